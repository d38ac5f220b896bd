"""Which code a process runs: a digest of paygrid's own sources.

Detached actors outlive the deployment that created them, so a new release deployed beside
them would otherwise keep running the previous release's shards and dispatchers. The digest is
part of `Settings.fingerprint`: an actor started from other code has another fingerprint, and a
deploy retires it (`actors.fleet.retire_stale`) like one started with other settings.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

# The packages whose code runs in paygrid's processes; tests and benchmarks do not.
PACKAGES = ("engine", "schema", "actors", "serve_app")
# What defines their behaviour: the code, and the migrations it expects.
_SUFFIXES = frozenset({".py", ".sql"})


def digest_of(root: Path, packages: tuple[str, ...] = PACKAGES) -> str:
    """A digest of the sources of `packages` under `root`: each file's relative path and bytes,
    in a fixed order, so the same code gives the same digest wherever it is installed."""
    digest = hashlib.sha256()
    for package in packages:
        files = (p for p in (root / package).rglob("*") if p.suffix in _SUFFIXES and p.is_file())
        for path in sorted(files):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()[:16]


@cache
def code_digest() -> str:
    """The digest of the code this process imported (computed once per process)."""
    return digest_of(Path(__file__).resolve().parent.parent)
