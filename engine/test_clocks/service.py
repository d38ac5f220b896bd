"""Create, read and advance test clocks (sandbox only).

Advancing moves the frozen time forward and marks the clock `advancing` in one transaction
with the `test_clock.advance` job that runs whatever became due for the clock's customers; the
job marks it `ready` when nothing due is left. A clock that is advancing cannot be advanced
again until then, so its customers' billing never runs at two times at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from engine.db.database import Database
from engine.errors import InvalidRequest, NotFound, StateError, UpstreamError
from engine.principal import Principal
from engine.scheduler.repository import JobRepository
from engine.test_clocks.clock import WallClock, utc_now
from engine.test_clocks.models import TestClock
from engine.test_clocks.repository import TestClockRepository
from engine.test_clocks.states import TestClockStatus

ADVANCE_JOB = "test_clock.advance"
_RERUN_AFTER = timedelta(seconds=2)

# Runs what became due for the clock's customers up to the clock's (new) time.
DueRunner = Callable[[UUID, datetime], Awaitable[None]]


def from_unix(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class TestClockService:
    """Test clocks, only where no real money can move: `sandbox_only` says whether every
    configured gateway is a sandbox (like Stripe's, which exist in test mode only)."""

    def __init__(
        self, db: Database, *, sandbox_only: bool, wall_clock: WallClock = utc_now
    ) -> None:
        self._db = db
        self._sandbox_only = sandbox_only
        self._now = wall_clock
        self._repository = TestClockRepository()
        self._jobs = JobRepository()

    async def create(
        self, *, frozen_time: datetime, name: str | None, principal: Principal
    ) -> TestClock:
        """A new clock, ready, at `frozen_time`; refused while a gateway that moves real money
        is configured, since a clock's customers are charged on its time."""
        if not self._sandbox_only:
            raise StateError(
                "test clocks need every configured gateway to be a sandbox (PAYGRID_GATEWAYS)",
                code="test_clocks_unavailable",
            )
        async with self._db.transaction() as conn:
            return await self._repository.insert(
                conn, clock_id=uuid4(), name=name, frozen_time=frozen_time, principal=principal
            )

    async def get(self, clock_id: UUID) -> TestClock:
        """The clock, or NotFound."""
        async with self._db.connection() as conn:
            found = await self._repository.get(conn, clock_id=clock_id)
        if found is None:
            raise NotFound(f"no test clock {clock_id}", param="test_clock")
        return found

    async def advance(
        self, clock_id: UUID, *, frozen_time: datetime, principal: Principal
    ) -> TestClock:
        """Move the clock forward to `frozen_time` (later than now on the clock, or a 400) and
        queue the job that runs what became due; 422 while an earlier advance still runs."""
        async with self._db.transaction() as conn:
            clock = await self._repository.get(conn, clock_id=clock_id, for_update=True)
            if clock is None:
                raise NotFound(f"no test clock {clock_id}", param="test_clock")
            if clock.status is TestClockStatus.ADVANCING:
                raise StateError(
                    "the test clock is still advancing; wait until its status is ready",
                    code="test_clock_advancing",
                )
            if frozen_time <= clock.frozen_time:
                raise InvalidRequest(
                    "frozen_time must be later than the clock's current time",
                    param="frozen_time",
                )
            moved = await self._repository.move(
                conn,
                clock_id=clock_id,
                frozen_time=frozen_time,
                status=TestClockStatus.ADVANCING,
                principal=principal,
            )
            await self._jobs.enqueue(
                conn,
                kind=ADVANCE_JOB,
                payload={"test_clock_id": str(clock_id)},
                dedupe_key=f"{ADVANCE_JOB}:{clock_id}",
            )
        return moved

    async def run_advance(self, clock_id: UUID, run_due: DueRunner) -> None:
        """The advance job: run what became due on the clock, then mark it ready. Idempotent,
        as a job must be: a rerun finds nothing left due. While a charge's outcome is not
        known yet (or the database or a shard is briefly away), the clock stays advancing and
        the job queues its own rerun, a few seconds later, for as long as it takes: the
        queue's retries would run out and leave the clock advancing for good."""
        clock = await self.get(clock_id)
        if clock.status is TestClockStatus.READY:
            return
        try:
            await run_due(clock_id, clock.frozen_time)
        except UpstreamError:
            again = self._now() + _RERUN_AFTER
            async with self._db.transaction() as conn:
                await self._jobs.enqueue(
                    conn,
                    kind=ADVANCE_JOB,
                    payload={"test_clock_id": str(clock_id)},
                    run_at=again,
                    dedupe_key=f"{ADVANCE_JOB}:{clock_id}:{again.isoformat()}",
                )
            return
        async with self._db.transaction() as conn:
            await self._repository.move(
                conn,
                clock_id=clock_id,
                frozen_time=clock.frozen_time,
                status=TestClockStatus.READY,
                principal=Principal(None, None),
            )
