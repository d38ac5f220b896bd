"""Encrypted backups and restores with PostgreSQL's own tools, and their retention.

paygrid backup   → a snapshot exported in PostgreSQL; the manifest (counts, ledger totals,
                   migrations) read in it and `pg_dump --snapshot` dumping it → encrypted
                   frames (envelope.py) → FILE
paygrid restore  ← FILE authenticated end to end first; then pg_restore → psql in one
                   transaction that also checks the manifest, so a failure changes nothing
--method basebackup: the manifest read in a snapshot, then pg_basebackup's tar of the whole
                   server (physical.py) → the same frames; `restore --to-directory DIR`
                   extracts it into a new or empty data directory
"""
