"""The local runtime keeps the secrets the environment leaves unset in the data dir: made once,
readable by their owner only, and the same for every later command."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from engine.config import Settings
from engine.keys.master import decode_master_key, new_master_key
from engine.runtime import local


def test_secrets_are_made_once_into_the_data_dir(tmp_path: Path) -> None:
    base = Settings(database_url="postgresql://db/x", data_dir=str(tmp_path))
    first, second = local.attach(base), local.attach(base)
    master = first.master_key.get_secret_value()
    assert len(decode_master_key(master)) == 32
    assert second.master_key.get_secret_value() == master
    assert second.secret_key.get_secret_value() == first.secret_key.get_secret_value()
    for name in (local.MASTER_KEY_FILE, local.SECRET_FILE):
        assert (tmp_path / name).stat().st_mode & 0o077 == 0


def test_the_environment_wins(tmp_path: Path) -> None:
    key = new_master_key()
    base = Settings(database_url="postgresql://db/x", data_dir=str(tmp_path), master_key=key)
    assert local.attach(base).master_key == SecretStr(key)
    assert not (tmp_path / local.MASTER_KEY_FILE).exists()
