"""Finds card data and secrets in text: full card numbers (the ones a test used, and any
Luhn-valid run of 13 to 19 digits that looks like one), CVC values next to their name, paygrid
API keys (`pgk_…`) and webhook secrets (`whsec_…`), wherever the text came from (a database
column, a log file, a Redis value, an HTTP body).

A finding shows where it was and a masked excerpt (first six and last four digits of a number),
so the test's own failure message does not leak what it found.

Deliberately independent of `engine/logs/scrubber.py`: the scan checks what the scrubber (and
every other redaction) missed, so it must not share its patterns' blind spots by construction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis

from schema.cards import luhn_valid

# A run of digits standing alone (no letter or digit on either side, so a hex hash or an id
# that happens to hold digits is not one; not the decimals of a number, like a metric's sum
# 0.2343170000002306), spaces or dashes allowed between groups. Card numbers start with 2-6
# (Mastercard 2-series, Amex 3, Visa 4, Mastercard 5, Discover 6): timestamps in milliseconds
# or nanoseconds (1…) are not taken for one.
_PAN = re.compile(
    r"(?<![0-9A-Za-z])(?<![0-9]\.)[2-6](?:[ -]?[0-9]){12,18}(?![0-9A-Za-z])(?!\.[0-9])"
)
# OpenTelemetry span ids are 16 random hex digits: one in ~2,000 is all decimal, and of those
# one in ten passes the Luhn check. Where one stands as a span id (a span's or log line's
# `span_id`/`parent_span_id`, the second id of a span link, the third part of a traceparent),
# it is not searched as a card number; nothing but a generated id is ever written there.
_SPAN_ID = re.compile(
    r"""(?:span_id\\?["']?\s*[:=]\s*\\?["']?|\[\\?"[0-9a-f]{32}\\?",\s*\\?"|"""
    r"""(?<![0-9a-f])[0-9a-f]{2}-[0-9a-f]{32}-)([0-9a-f]{16})(?![0-9a-f])"""
)
# A UUID (an id, an Idempotency-Key holding one) whose first groups happen to be all decimal
# reads as a dashed run of digits, of which one in ten passes the Luhn check; UUIDs are
# generated ids, and no card number is written in their 8-4-4-4-12 shape.
_UUID = re.compile(
    r"(?<![0-9A-Za-z])[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{12}(?![0-9A-Za-z])"
)
_API_KEY = re.compile(r"pgk_[A-Za-z0-9_\-]{16,}")
_WEBHOOK_SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]{16,}")
# A quote may come escaped (`\"cvc\": \"123\"`: JSON inside a JSON string, a logged body).
_QUOTE = r"""(?:\\?["'])?"""
_CVC_NAME = (
    _QUOTE
    + r"\b(?:cvc2?|cvv2?|csc|card_?code|security_?code)\b"
    + _QUOTE
    + r"\s*(?:[:=]|=>)\s*"
    + _QUOTE
)

# What the database prefilter asks PostgreSQL for (case-insensitive); the precise checks run
# here on the few values that match.
SQL_PREFILTER = r"[0-9]{13}|[0-9][ -][0-9]{4}[ -][0-9]{4}[ -][0-9]|pgk_|whsec_|cvc|cvv|9731"
# Logs of Ray's own C++ processes (raylet, GCS) and their state dumps: no paygrid code runs
# there, and their resource figures (memory in ten-thousandths of a byte: 2395530000000000)
# are long numbers of which one in ten passes the Luhn check. `scan_files` is given this as
# `numbers_not_data`: they are searched for the run's card numbers, CVCs and secrets, not for
# every Luhn-valid number.
RAY_CORE_LOGS = re.compile(r"^(raylet|gcs_server|debug_state)")
_SCANNED_TYPES = ("text", "character varying", "character", "json", "jsonb", "bytea", "ARRAY")


@dataclass(frozen=True, slots=True)
class Finding:
    where: str
    what: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what} in …{self.excerpt}…"


def _mask(text: str) -> str:
    def hide(match: re.Match[str]) -> str:
        digits = re.sub(r"[ -]", "", match.group())
        return digits[:6] + "…" + digits[-4:] if len(digits) >= 13 else match.group()

    text = _PAN.sub(hide, text)
    text = _API_KEY.sub(lambda m: m.group()[:10] + "…", text)
    return _WEBHOOK_SECRET.sub(lambda m: m.group()[:10] + "…", text)


@dataclass
class Scanner:
    """The needles of one test run: its card numbers and its CVC (a distinctive one), and any
    secrets it was given (its API keys, its endpoints' webhook secrets); with `any_cvc`, any
    3 or 4 digits next to a CVC's name are one (a scan of what many tests left)."""

    pans: set[str] = field(default_factory=set)
    cvcs: set[str] = field(default_factory=set)
    secrets: set[str] = field(default_factory=set)
    any_cvc: bool = False

    def scan(self, where: str, text: str, *, any_number: bool = True) -> list[Finding]:
        """Everything in `text` that must not be there; without `any_number`, only this run's
        card numbers, not every Luhn-valid one."""
        hits = [*self._card_numbers(text, any_number), *self._cvcs(text), *self._secrets(text)]
        return [
            Finding(where, what, _mask(text[max(0, start - 40) : end + 40]).replace("\n", " "))
            for what, start, end in hits
        ]

    def _card_numbers(self, text: str, any_number: bool) -> list[tuple[str, int, int]]:
        hits = []
        # Span ids blanked, the same length: the offsets of what is found stay the text's.
        text = _SPAN_ID.sub(lambda m: m.group()[:-16] + "#" * 16, text)
        text = _UUID.sub(lambda m: "#" * len(m.group()), text)
        for match in _PAN.finditer(text):
            digits = re.sub(r"[ -]", "", match.group())
            if digits in self.pans:
                hits.append(("a card number of this run", match.start(), match.end()))
            elif any_number and 13 <= len(digits) <= 19 and luhn_valid(digits):
                hits.append(("a Luhn-valid card number", match.start(), match.end()))
        return hits

    def _cvcs(self, text: str) -> list[tuple[str, int, int]]:
        values = [re.escape(cvc) for cvc in self.cvcs]
        if self.any_cvc:
            values = ["[0-9]{3,4}"]
        return [
            ("a CVC", match.start(), match.end())
            for value in values
            for match in re.finditer(_CVC_NAME + value + r"(?![0-9])", text, re.I)
        ]

    def _secrets(self, text: str) -> list[tuple[str, int, int]]:
        hits = [
            (what, match.start(), match.end())
            for pattern, what in ((_API_KEY, "an API key"), (_WEBHOOK_SECRET, "a webhook secret"))
            for match in pattern.finditer(text)
        ]
        for secret in self.secrets:
            start = text.find(secret)
            if start >= 0:
                hits.append(("a secret of this run", start, start + len(secret)))
        return hits

    def scan_all(self, texts: Iterable[tuple[str, str]]) -> list[Finding]:
        """`scan` over `(where, text)` pairs."""
        return [f for where, text in texts for f in self.scan(where, text)]

    def scan_files(
        self,
        root: Path,
        *,
        logs_only: bool = False,
        numbers_not_data: re.Pattern[str] | None = None,
    ) -> list[Finding]:
        """Every regular file under `root` (with `logs_only`, only log files: `*.log`, `log`,
        or in a `log` folder), read as Latin-1 so any byte sequence decodes: digits and ASCII
        read as themselves. Files whose name matches `numbers_not_data` are searched for this
        run's numbers only, not for any Luhn-valid one. Blocking: call it in a thread."""
        found: list[Finding] = []
        for path in sorted(root.rglob("*")):
            if not path.is_file() or path.is_symlink():
                continue
            if logs_only and not (
                path.suffix == ".log" or path.name == "log" or path.parent.name == "log"
            ):
                continue
            any_number = numbers_not_data is None or not numbers_not_data.search(path.name)
            text = path.read_bytes().decode("latin-1")
            found += self.scan(str(path), text, any_number=any_number)
        return found

    async def scan_database(self, conn: asyncpg.Pool | asyncpg.Connection) -> list[Finding]:
        """Every text, JSON, array and binary column of every table in the public schema.
        PostgreSQL picks the values worth a look (`SQL_PREFILTER`); this checks them."""
        columns = await conn.fetch(
            """SELECT table_name, column_name, data_type FROM information_schema.columns
               WHERE table_schema = 'public' AND data_type = ANY($1::text[])
                 AND table_name IN (SELECT tablename FROM pg_tables WHERE schemaname = 'public')
               ORDER BY table_name, column_name""",
            list(_SCANNED_TYPES),
        )
        found: list[Finding] = []
        for column in columns:
            table, name = column["table_name"], column["column_name"]
            # Bytes as escaped text: printable ASCII (a number stored in clear) reads as itself.
            value = (
                f"""encode("{name}", 'escape')"""
                if column["data_type"] == "bytea"
                else f'"{name}"::text'
            )
            rows = await conn.fetch(
                f"""SELECT {value} AS v FROM "{table}" WHERE {value} ~* $1 LIMIT 500""",
                SQL_PREFILTER,
            )
            for row in rows:
                found += self.scan(f"database {table}.{name}", row["v"])
        return found

    async def scan_redis(self, client: aioredis.Redis) -> list[Finding]:
        """Every key and value in the Redis database (strings, hashes, lists, sets, sorted sets,
        streams)."""
        found: list[Finding] = []
        async for raw_key in client.scan_iter(count=500):
            key = raw_key.decode("latin-1") if isinstance(raw_key, bytes) else str(raw_key)
            kind = await client.type(raw_key)
            kind = kind.decode() if isinstance(kind, bytes) else str(kind)
            values: list[object] = [key]
            if kind == "string":
                values.append(await client.get(raw_key))
            elif kind == "hash":
                values.append(await client.hgetall(raw_key))
            elif kind == "list":
                values.append(await client.lrange(raw_key, 0, -1))
            elif kind == "set":
                values.append(await client.smembers(raw_key))
            elif kind == "zset":
                values.append(await client.zrange(raw_key, 0, -1))
            elif kind == "stream":
                values.append(await client.xrange(raw_key))
            text = " ".join(_text(v) for v in values)
            found += self.scan(f"redis {key}", text)
        return found


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, dict):
        return " ".join(f"{_text(k)}={_text(v)}" for k, v in value.items())
    if isinstance(value, list | set | tuple):
        return " ".join(_text(v) for v in value)
    return "" if value is None else str(value)
