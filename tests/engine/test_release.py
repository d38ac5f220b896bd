"""The code digest that tells one release's processes from another's (`engine.release`), and
its part in the settings fingerprint by which a deploy retires actors of another release."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import release
from engine.config import Settings


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_digest_follows_the_code_and_nothing_else(tmp_path: Path) -> None:
    files = {"engine/a.py": "A = 1\n", "schema/migrations/0001_x.sql": "SELECT 1;\n"}
    one = _tree(tmp_path / "one", files)
    two = _tree(tmp_path / "two", files)
    assert release.digest_of(one) == release.digest_of(two)  # wherever it is installed
    # Bytecode caches, notes and other packages are not the release.
    _tree(two, {"engine/__pycache__/a.cpython-311.pyc": "x", "engine/NOTES": "n", "tests/t.py": ""})
    assert release.digest_of(one) == release.digest_of(two)
    _tree(two, {"engine/a.py": "A = 2\n"})
    assert release.digest_of(one) != release.digest_of(two)
    # A file added is another release too.
    three = _tree(tmp_path / "three", {"engine/b.py": "A = 1\n", **files})
    assert release.digest_of(three) != release.digest_of(one)


def test_this_checkout_has_a_stable_digest() -> None:
    assert release.code_digest() == release.digest_of(Path(release.__file__).parent.parent)


def test_another_release_has_another_fingerprint(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(database_url="postgresql://u:p@db/x")
    running = settings.fingerprint()
    monkeypatch.setattr("engine.config.code_digest", lambda: "0" * 16)
    assert settings.fingerprint() != running
