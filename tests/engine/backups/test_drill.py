"""The restore drill: traffic through the money path, the subscription billing and the webhook
dispatcher, a backup, the database dropped and made again, a restore. Every row of every table
comes back (payments, refunds, ledger entries, plans, subscriptions, invoices, events,
idempotency answers, delivery states), the ledger equals the manifest, and a request repeated
under an Idempotency-Key from before the backup replays its first answer without reaching the
gateway. Neither the file nor the dump inside it holds a card number, PII or a signing secret
in clear."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from uuid import uuid4

import asyncpg

from engine.backups.envelope import frames
from engine.backups.tools import find_tool
from engine.db.database import Database, open_database
from engine.principal import Principal
from engine.runtime.webhooks import open_webhook_runtime
from tests.engine.backups.conftest import KEYS, Scratch, backups, every_row
from tests.engine.payments.builders import VISA, Requests
from tests.engine.payments.fakes import decline
from tests.engine.payments.harness import Rig, engine_settings
from tests.engine.subscriptions.harness import MONTHLY
from tests.engine.subscriptions.harness import build as build_billing
from tests.engine.webhooks.receiver import Answers

HOLDER_EMAIL = "drill-holder@example.com"


async def _traffic(db: Database, requests: Requests, answers: Answers) -> tuple[Rig, str]:
    """A plan, a subscription and its paid first invoice (on a saved card), payments of every
    kind, a refund, a decline, webhook deliveries delivered and pending; returns the rig and
    the endpoint's signing secret."""
    settings = engine_settings().model_copy(update={"webhook_allow_private": True})
    webhooks = open_webhook_runtime(settings, db)
    try:
        endpoint = await webhooks.endpoints.create(
            url=f"{answers.base_url}/hook",
            enabled_events=["*"],
            description="drill",
            metadata={},
            principal=Principal(None, "drill"),
        )
        # Billed first: the rig's shard, built after, is the one holding the slots.
        billed = await build_billing(db)
        subscriber = await billed.customer()
        plan = await billed.plan()
        subscribed = await billed.subscribe(
            subscriber, await billed.card(subscriber), plan_id=plan.id
        )
        assert subscribed.status_code == 201, subscribed.body
        assert subscribed.body["latest_invoice"]["status"] == "paid"
        rig = await Rig.build(db, requests)
        bought = await rig.one(rig.requests.purchase(1500, email=HOLDER_EMAIL, key="drill-buy"))
        held = await rig.one(rig.requests.authorize(800, key="drill-hold"))
        assert (await rig.one(rig.requests.capture(held.body, 500))).status_code == 200
        refunded = await rig.one(rig.requests.refund(bought.body, 400, key="drill-refund"))
        assert refunded.status_code == 200
        rig.gateway.script(decline())
        assert (await rig.one(rig.requests.purchase(900, key="drill-decline"))).status_code == 402
        assert (await rig.one(rig.requests.purchase(700, "JPY"))).status_code == 200
        await webhooks.dispatcher.pump()
        await webhooks.dispatcher.drain()
        # Left pending: the backup holds deliveries in both states.
        assert (await rig.one(rig.requests.purchase(300, key="drill-late"))).status_code == 200
    finally:
        await webhooks.close()
    assert endpoint.shown_secret is not None
    return rig, endpoint.shown_secret


async def test_the_drill_brings_every_row_back(
    scratch: Scratch, scratch_db: Database, answers: Answers, tmp_path: Path
) -> None:
    requests = Requests(uuid4())
    rig, _ = await _traffic(scratch_db, requests, answers)
    first = await rig.one(rig.requests.purchase(1500, email=HOLDER_EMAIL, key="drill-buy"))
    before = await every_row(scratch.dsn)
    deliveries = before["webhook_deliveries"]
    assert any('"status": "succeeded"' in row for row in deliveries)
    assert any('"status": "pending"' in row for row in deliveries)

    manifest = await backups(scratch.dsn).backup(tmp_path / "drill.backup")
    await scratch_db.close()
    await scratch.recreate()
    report = await backups(scratch.dsn).restore(tmp_path / "drill.backup")

    assert report.migrated == []
    assert await every_row(scratch.dsn) == before
    assert manifest.row_counts["transactions"] == len(before["transactions"])
    assert manifest.ledger_totals == await _ledger_totals(scratch.dsn)
    assert manifest.ledger_totals["JPY"]["captured"] == 700
    assert manifest.ledger_totals["USD"]["captured"] == 1500 + 500 + 300 + MONTHLY.amount
    for table in ("plans", "subscriptions", "invoices", "payment_methods"):
        assert before[table], table
    assert any('"status": "paid"' in row for row in before["invoices"])
    restored = await open_database(scratch.dsn, min_size=1, max_size=4)
    try:
        again = await Rig.build(restored, requests)
        replay = await again.one(again.requests.purchase(1500, email=HOLDER_EMAIL, key="drill-buy"))
        assert (replay.status_code, replay.replayed, replay.body) == (200, True, first.body)
        assert again.gateway.calls == []
    finally:
        await restored.close()


async def _ledger_totals(dsn: str) -> dict[str, dict[str, int]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT currency, account, sum(amount) AS total FROM ledger_entries GROUP BY 1, 2"
        )
    finally:
        await conn.close()
    totals: dict[str, dict[str, int]] = {}
    for r in rows:
        totals.setdefault(r["currency"], {})[r["account"]] = int(r["total"])
    return totals


async def test_no_card_pii_or_secret_in_the_file_or_the_dump(
    scratch: Scratch, scratch_db: Database, answers: Answers, tmp_path: Path
) -> None:
    _, secret = await _traffic(scratch_db, Requests(uuid4()), answers)
    out = tmp_path / "scan.backup"
    await backups(scratch.dsn).backup(out)

    with out.open("rb") as handle:
        dump = b"".join(list(frames(handle, KEYS))[1:])
    conn = await asyncpg.connect(scratch.dsn)
    try:
        server = int(await conn.fetchval("SHOW server_version_num")) // 10000
    finally:
        await conn.close()
    pg_restore = find_tool("pg_restore", server_major=server)
    done = await asyncio.to_thread(
        subprocess.run,
        [str(pg_restore.path), "--file=-"],
        input=dump,
        capture_output=True,
        check=True,
    )
    script = done.stdout
    assert b"COPY public.transactions" in script  # the scan reads the data, not a blob
    needles = [VISA, VISA[-8:], HOLDER_EMAIL, secret, secret.removeprefix("whsec_")]
    for needle in needles:
        for what, data in (("file", out.read_bytes()), ("dump", dump), ("script", script)):
            assert needle.lower().encode() not in data.lower(), f"{needle!r} in the {what}"
