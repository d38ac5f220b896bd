"""Which keys encrypt and open backups, from the settings.

With `PAYGRID_BACKUP_KEY` set, new backups are encrypted under it (an operator can then keep
backups readable by someone who does not hold the master key); otherwise under the master key.
Either way a backup opens under whichever of these it names: the backup key, the master key, or
`PAYGRID_MASTER_KEY_PREVIOUS`, so one taken before a rotation (or before a backup key was set)
still restores while that key is configured. Each file derives its own AES key
from the chosen secret (HKDF, envelope.py); the secrets themselves never reach a file.
"""

from __future__ import annotations

from engine.backups.envelope import BackupKey
from engine.config import Settings
from engine.keys.master import decode_master_key


def backup_keys(settings: Settings) -> list[BackupKey]:
    """The keys of backups, the one new backups are encrypted under first."""
    found = []
    backup_key = settings.backup_key.get_secret_value()
    if backup_key:
        found.append(BackupKey("backup", decode_master_key(backup_key)))
    for configured in (settings.master_key, settings.master_key_previous):
        if configured.get_secret_value():
            found.append(BackupKey("master", decode_master_key(configured.get_secret_value())))
    return found
