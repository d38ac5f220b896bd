"""Which keys encrypt and open backups, from the settings.

With `PAYGRID_BACKUP_KEY` set, backups are encrypted under it alone (an operator can then keep
backups readable by someone who does not hold the master key). Otherwise under the master key,
and opened by it or by `PAYGRID_MASTER_KEY_PREVIOUS`, so a backup taken before a master-key
rotation still restores while the previous key is configured. Each file derives its own AES key
from the chosen secret (HKDF, envelope.py); the secrets themselves never reach a file.
"""

from __future__ import annotations

from engine.backups.envelope import BackupKey
from engine.config import Settings
from engine.keys.master import decode_master_key


def backup_keys(settings: Settings) -> list[BackupKey]:
    """The keys of backups, the one new backups are encrypted under first."""
    backup_key = settings.backup_key.get_secret_value()
    if backup_key:
        return [BackupKey("backup", decode_master_key(backup_key))]
    found = []
    for configured in (settings.master_key, settings.master_key_previous):
        if configured.get_secret_value():
            found.append(BackupKey("master", decode_master_key(configured.get_secret_value())))
    return found
