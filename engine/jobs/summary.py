"""One partition of a transaction summary, read on its own connection: the unit of work a
cluster task runs (see `actors/jobs/transaction_summary.py`)."""

from __future__ import annotations

from pydantic import SecretStr

from engine.db.database import open_database
from engine.jobs import repository
from engine.jobs.partials import SummaryPartial
from engine.jobs.ranges import Partition


async def read_partition(dsn: SecretStr, partition: Partition) -> SummaryPartial:
    """The partial summary of `partition`, read on a connection opened and closed here (a task
    may run on any node, so it brings nothing with it but the DSN). An unreachable database
    raises `DatabaseUnavailable`."""
    db = await open_database(dsn.get_secret_value(), min_size=1, max_size=1)
    try:
        async with db.connection() as conn:
            return await repository.read_partition(conn, start=partition.start, end=partition.end)
    finally:
        await db.close()
