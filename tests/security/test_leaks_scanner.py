"""The leak scanner can fail: each kind of leak planted in a text, a file, a database column
and a Redis value is found, and what merely looks numeric (timestamps, ids, hashes, masked
numbers, other secrets' prefixes) is not."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import asyncpg
from redis.asyncio import Redis

from tests.security.leaks import Scanner
from tests.security.test_leak_scan import CVC, new_pan

PAN = new_pan("4539")


def _scanner() -> Scanner:
    return Scanner(pans={PAN}, cvcs={CVC}, secrets={"pgk_" + "s" * 40})


def test_planted_leaks_are_found_and_masked_in_the_report() -> None:
    scanner = _scanner()
    planted = {
        "pan": f'{{"card": "{PAN}"}}',
        "spaced": f"card {PAN[:4]} {PAN[4:8]} {PAN[8:12]} {PAN[12:]} declined",
        "other pan": "charged 4111111111111111 ok",
        "end of a sentence": "the card was 4111111111111111.",
        "cvc json": f'{{"number": "****", "cvc": "{CVC}"}}',
        "cvc repr": f"CardDetails(cvc='{CVC}')",
        "cvc escaped": f'body={{\\"cvc\\": \\"{CVC}\\"}}',
        "api key": "Authorization: Bearer pgk_AbCdEfGhIjKlMnOpQrStUv",
        "secret": "signing with whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw ok",
    }
    for name, text in planted.items():
        found = scanner.scan(name, text)
        assert found, f"{name} not found"
        assert all(PAN not in str(f) for f in found), "a report must mask the number"
    assert new_pan("5425") != new_pan("5425")


def test_what_only_looks_like_a_card_number_is_not_a_leak() -> None:
    scanner = _scanner()
    clean = [
        "at 1764300000000 and 1764300000000000000 ns",  # timestamps
        "duration_sum=0.2343170000002306 x=2413640000000000.5",  # decimals
        f"payment {uuid.uuid4()} hash {'4' * 12}af{'3' * 20}",  # ids, hex
        f"card ************{PAN[-4:]} brand visa last4 {PAN[-4:]}",  # masked
        f"order 4{PAN[1:-1]}{(int(PAN[-1]) + 1) % 10}",  # fails the Luhn check
        "key pgk_abcdef (prefix), pgk_[REDACTED], whsec_[REDACTED]",
        f"amount {CVC} cents",  # the CVC's digits, not named as one
    ]
    for text in clean:
        assert scanner.scan("clean", text) == [], text


def test_any_cvc_finds_every_cvc_beside_its_name() -> None:
    scanner = Scanner(any_cvc=True)
    for text in ('{"cvc": "123"}', "cvv=4567", "CardDetails(cvc='901')"):
        assert scanner.scan("cvc", text), text
    for text in ('{"cvc": "[REDACTED]"}', "cvc must be 3 or 4 digits", "amount 123"):
        assert scanner.scan("clean", text) == [], text


def test_a_span_id_is_not_a_card_number_a_card_beside_it_is() -> None:
    span_id = new_pan("2377")  # all decimal and Luhn-valid, as a random span id may be
    trace_id = uuid.uuid4().hex
    scanner = Scanner()
    for text in (
        f'{{"trace_id":"{trace_id}","span_id":"{span_id}","parent_span_id":"{span_id}"}}',
        f'"links":[["{trace_id}","{span_id}"]]',
        f"traceparent=00-{trace_id}-{span_id}-01",
        f'{{\\"span_id\\": \\"{span_id}\\"}}',
    ):
        assert scanner.scan("span", text) == [], text
    assert scanner.scan("card", f'{{"span_id":"{span_id}","number":"{span_id}"}}')


def test_a_uuid_is_not_a_card_number_a_card_beside_it_is() -> None:
    digits = new_pan("4", length=16)  # a UUID whose first three groups are all decimal
    id_ = f"{digits[:8]}-{digits[8:12]}-{digits[12:]}-9aab-b2568d138a63"
    assert str(uuid.UUID(id_)) == id_
    scanner = Scanner()
    assert scanner.scan("key", f"crash-{id_}") == []
    assert scanner.scan("card", f"crash-{id_} {digits}")


def test_files_are_scanned(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "worker-1.err").write_bytes(b"\x00\xff boom " + PAN.encode() + b"\n")
    (tmp_path / "clean.log").write_text("nothing here\n")
    found = _scanner().scan_files(tmp_path)
    assert [Path(f.where).name for f in found] == ["worker-1.err"]


async def test_database_and_redis_are_scanned(db: asyncpg.Pool, infra: dict[str, str]) -> None:
    pool = db
    table = f"leak_probe_{uuid.uuid4().hex[:8]}"
    await pool.execute(f"CREATE TABLE {table} (note text, doc jsonb, raw bytea)")
    try:
        await pool.execute(
            f"INSERT INTO {table} VALUES ('clean', '{{}}', 'clean'), ($1, NULL, NULL), "
            f"(NULL, $2::jsonb, NULL), (NULL, NULL, $3)",
            f"paid with {PAN}",
            f'{{"cvc": "{CVC}"}}',
            b"\x01\x02" + PAN.encode(),
        )
        found = await _scanner().scan_database(pool)
        mine = sorted(f.where for f in found if table in f.where)
        assert mine == [f"database {table}.{c}" for c in ("doc", "note", "raw")]
    finally:
        await pool.execute(f"DROP TABLE {table}")
    key = f"leak-probe:{uuid.uuid4().hex}"
    redis = Redis.from_url(infra["redis_url"])
    try:
        await redis.hset(key, mapping={"card": PAN})
        found = await _scanner().scan_redis(redis)
        assert any(key in f.where for f in found)
    finally:
        await redis.delete(key)
        await redis.aclose()


def test_files_of_ray_core_are_searched_for_this_runs_numbers_only(tmp_path: Path) -> None:
    resources = "memory: [2413640000000000], CPU: [10000]\n"
    assert _scanner().scan("raylet.out", resources), "Luhn-valid, so a finding in general"
    (tmp_path / "raylet.out").write_text(resources)
    (tmp_path / "gcs_server.out").write_text(f"leaked {PAN}\n")
    core = re.compile(r"^(raylet|gcs_server)")
    found = _scanner().scan_files(tmp_path, numbers_not_data=core)
    assert [(Path(f.where).name, f.what) for f in found] == [
        ("gcs_server.out", "a card number of this run")
    ]
