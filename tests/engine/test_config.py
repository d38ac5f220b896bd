"""Settings: counts left at 0 fit the machine, explicit ones stay; the fingerprint tells two
configurations apart; DSNs are secrets that never print."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from engine.config import Settings
from engine.keys.master import new_master_key


@pytest.mark.parametrize(
    ("cpus", "replicas", "shards", "dispatchers"),
    [(1, 1, 1, 2), (2, 1, 1, 2), (4, 2, 1, 2), (8, 4, 2, 2), (16, 8, 4, 4), (64, 32, 16, 16)],
)
def test_counts_left_at_zero_follow_the_cpus(
    cpus: int, replicas: int, shards: int, dispatchers: int
) -> None:
    fitted = Settings().fitted(cpus)
    assert (fitted.replicas, fitted.ledger_shards, fitted.webhook_dispatchers) == (
        replicas,
        shards,
        dispatchers,
    )


def test_explicit_counts_are_kept() -> None:
    fitted = Settings(replicas=3, ledger_shards=5, webhook_dispatchers=2).fitted(64)
    assert (fitted.replicas, fitted.ledger_shards, fitted.webhook_dispatchers) == (3, 5, 2)
    assert "3 API replica(s), 5 ledger shard(s)" in fitted.describe_counts()


def test_the_fingerprint_tells_configurations_apart() -> None:
    base = Settings(ledger_shards=2, database_url="postgresql://u:p@db/x")
    assert (
        base.fingerprint()
        == Settings(ledger_shards=2, database_url="postgresql://u:p@db/x").fingerprint()
    )
    assert (
        base.fingerprint()
        != Settings(ledger_shards=3, database_url="postgresql://u:p@db/x").fingerprint()
    )
    # Secrets count too (hashed): a new password is a new configuration.
    assert (
        base.fingerprint()
        != Settings(ledger_shards=2, database_url="postgresql://u:q@db/x").fingerprint()
    )


def test_dsns_are_secrets() -> None:
    settings = Settings(database_url="postgresql://u:hunter2@db/x", redis_url="redis://:pw@r/0")
    assert settings.database_dsn == "postgresql://u:hunter2@db/x"
    for text in (str(settings), repr(settings), settings.model_dump_json()):
        assert "hunter2" not in text
        assert ":pw@" not in text


def test_the_master_key_is_a_secret_of_32_bytes() -> None:
    key = new_master_key()
    settings = Settings(master_key=key)
    for text in (str(settings), repr(settings), settings.model_dump_json()):
        assert key not in text
    for bad in ("too-short", "x" * 44):
        with pytest.raises(ValidationError, match="master_key"):
            Settings(master_key=bad)
    with pytest.raises(ValidationError, match="master_key_previous"):
        Settings(master_key=key, master_key_previous="too-short")
