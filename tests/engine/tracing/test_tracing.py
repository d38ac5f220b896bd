"""Tracing without Ray: the modes, the shared in-memory store, the scrubber, batch spans and SQL
spans, against the session's real Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import uuid

import pytest
from opentelemetry import trace
from redis.asyncio import Redis

from engine.batching import Coalescer
from engine.config import Settings
from engine.db.pool import create_pool
from engine.logs.setup import configure_logging
from engine.tracing import (
    configure_tracing,
    current_traceparent,
    enabled,
    flush_tracing,
    remote_parent,
    spans_for_trace,
    tracer,
    traces_for_correlation,
)
from engine.tracing.setup import resolved_mode
from engine.tracing.sql import statement_name
from engine.tracing.store import FinishedSpan

CARD = "4000056655665556"


async def _spans(redis: Redis, trace_id: str) -> list[FinishedSpan]:
    assert await asyncio.to_thread(flush_tracing)
    return await spans_for_trace(redis, trace_id)


def test_mode_from_settings_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    assert resolved_mode("auto") == "off"
    assert resolved_mode("console") == "console"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert resolved_mode("auto") == "otlp"
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    assert resolved_mode("auto") == "off"
    assert resolved_mode("memory") == "off"


def test_off_records_nothing(settings: Settings) -> None:
    assert not configure_tracing(
        settings.model_copy(update={"tracing": "off"}), component="test", process="tests"
    )
    assert not enabled()
    with tracer().start_as_current_span("nothing") as span:
        assert not span.is_recording()
        assert current_traceparent() is None


@pytest.mark.usefixtures("traced")
async def test_spans_reach_the_shared_store_scrubbed(redis: Redis) -> None:
    cid = uuid.uuid4().hex
    with tracer().start_as_current_span(
        "scrubbed",
        attributes={
            "http.route": "/api/payments/purchase",
            "paygrid.correlation_id": f"{cid}:{CARD}",
            "card.number": CARD,
            "api.key": "pgk_live_secret",
        },
    ) as span:
        span.record_exception(ValueError(f"card {CARD} cvc: 123 key pgk_abcdef whsec_abcdef"))
        trace_id = f"{span.get_span_context().trace_id:032x}"
    (found,) = await _spans(redis, trace_id)
    assert found.name == "scrubbed"
    assert found.process == "tests"
    assert found.attributes["http.route"] == "/api/payments/purchase"
    assert "card.number" not in found.attributes
    assert "api.key" not in found.attributes
    text = found.to_json().decode()
    for secret in (CARD, "cvc: 123", "pgk_abcdef", "whsec_abcdef"):
        assert secret not in text
    assert "5556" in found.attributes["paygrid.correlation_id"]
    assert await traces_for_correlation(redis, f"{cid}:{'*' * 12}5556") == [trace_id]


@pytest.mark.usefixtures("traced")
async def test_a_traceparent_carries_the_parent(redis: Redis) -> None:
    with tracer().start_as_current_span("sender"):
        sent = current_traceparent()
    assert sent is not None
    with tracer().start_as_current_span("receiver", context=remote_parent(sent)):
        pass
    trace_id = sent.split("-")[1]
    sender, receiver = await _spans(redis, trace_id)
    assert receiver.parent_span_id == sender.span_id == sent.split("-")[2]
    assert remote_parent("garbage") is None
    assert remote_parent(None) is None


@pytest.mark.usefixtures("traced")
async def test_a_batch_span_links_every_item_and_is_the_first_ones_child(redis: Redis) -> None:
    inside: list[str | None] = []

    async def run(items: list[int]) -> list[int]:
        inside.append(current_traceparent())
        return items

    batches: Coalescer[int, int] = Coalescer(run, max_batch=10, span_name="test.batch")

    async def one(n: int) -> tuple[str, int]:
        with tracer().start_as_current_span(f"request {n}") as span:
            answer = await batches.submit(n)
            return f"{span.get_span_context().span_id:016x}", answer

    requests = await asyncio.gather(*(one(n) for n in range(3)))
    assert [a for _, a in requests] == [0, 1, 2]
    (traceparent,) = inside
    assert traceparent is not None
    spans = await _spans(redis, traceparent.split("-")[1])
    batch = next(s for s in spans if s.name == "test.batch")
    assert batch.attributes["paygrid.batch.size"] == 3
    assert batch.parent_span_id == requests[0][0]
    assert {span_id for _, span_id in batch.links} == {span_id for span_id, _ in requests}


@pytest.mark.usefixtures("traced")
async def test_each_statement_is_a_span_named_without_its_parameters(
    redis: Redis, migrated_dsn: str
) -> None:
    pool = await create_pool(migrated_dsn, min_size=1, max_size=1)
    try:
        with tracer().start_as_current_span("work") as span:
            async with pool.acquire() as conn:
                assert await conn.fetchval("SELECT $1::text AS card", CARD) == CARD
            trace_id = f"{span.get_span_context().trace_id:032x}"
            parent = f"{span.get_span_context().span_id:016x}"
        # asyncpg reports a statement on the loop's next turn.
        await asyncio.sleep(0)
    finally:
        await pool.close()
    spans = await _spans(redis, trace_id)
    statement = next(s for s in spans if s.name == "SELECT")
    assert statement.parent_span_id == parent
    assert statement.attributes == {"db.system.name": "postgresql", "db.operation.name": "SELECT"}
    assert CARD not in statement.to_json().decode()


def test_statement_names() -> None:
    assert statement_name("INSERT INTO events (a) SELECT * FROM unnest($1)")[0] == "INSERT events"
    assert statement_name("  UPDATE transactions SET status = $1")[0] == "UPDATE transactions"
    assert statement_name("SELECT id FROM webhook_deliveries d JOIN events e")[0] == (
        "SELECT webhook_deliveries"
    )
    assert statement_name("BEGIN ISOLATION LEVEL READ COMMITTED")[0] == "BEGIN"


def test_spans_outside_a_trace_are_not_current() -> None:
    assert not trace.get_current_span().is_recording()


@pytest.mark.usefixtures("traced")
def test_log_lines_written_in_a_span_carry_its_ids() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    configure_logging(component="shard", process="ledger-shard-3", stream=stream)
    try:
        with tracer().start_as_current_span("logged") as span:
            logging.getLogger("paygrid.test").warning("inside")
        logging.getLogger("paygrid.test").warning("outside")
    finally:
        for handler in list(root.handlers):
            if handler not in before[0]:
                root.removeHandler(handler)
        root.setLevel(before[1])
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    context = span.get_span_context()
    assert inside["trace_id"] == f"{context.trace_id:032x}"
    assert inside["span_id"] == f"{context.span_id:016x}"
    assert "trace_id" not in outside
