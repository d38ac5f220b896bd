"""Which keys encrypt and open backups: the backup key first when set, then the master key and
the previous one, so older backups still open."""

from __future__ import annotations

from pydantic import SecretStr

from engine.backups.keys import backup_keys
from engine.config import Settings
from engine.keys.master import decode_master_key, new_master_key


def test_the_backup_key_encrypts_and_every_configured_key_opens() -> None:
    master, previous, backup = new_master_key(), new_master_key(), new_master_key()
    only_master = backup_keys(Settings(master_key=SecretStr(master)))
    assert [(k.source, k.secret) for k in only_master] == [("master", decode_master_key(master))]
    every = backup_keys(
        Settings(
            master_key=SecretStr(master),
            master_key_previous=SecretStr(previous),
            backup_key=SecretStr(backup),
        )
    )
    assert [(k.source, k.secret) for k in every] == [
        ("backup", decode_master_key(backup)),
        ("master", decode_master_key(master)),
        ("master", decode_master_key(previous)),
    ]
    assert len({k.id for k in every}) == 3
