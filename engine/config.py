"""One settings object, built once at each entry point and passed down.

Every knob has a `PAYGRID_` environment variable. Units are in the names; bounds are checked
here so that a bad value stops start-up with the variable named instead of failing later.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from ipaddress import ip_network
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from engine.keys.master import decode_master_key
from engine.release import code_digest
from schema.states import RuleAction

# Which span exporter a process uses (engine/tracing/setup.py says what each means).
TracingMode = Literal["auto", "off", "otlp", "console", "memory"]

# The audit trail (and resolved AML alerts) is kept at least 12 months before it is purged.
MIN_AUDIT_RETENTION_DAYS = 365
# Erased customers' pseudonymous financial rows are kept at least this long, whatever is asked.
MIN_FINANCIAL_RETENTION_YEARS = 5


class Settings(BaseSettings):
    """Runtime configuration for every paygrid process."""

    model_config = SettingsConfigDict(env_prefix="PAYGRID_", extra="ignore", frozen=True)

    # Secret: a DSN may carry a password. Read them through `database_dsn` / `redis_dsn`.
    database_url: SecretStr = Field(
        default=SecretStr(""), validation_alias="DATABASE_URL", description="PostgreSQL DSN"
    )
    redis_url: SecretStr = Field(
        default=SecretStr(""), validation_alias="REDIS_URL", description="Redis URL"
    )
    secret_key: SecretStr = Field(
        default=SecretStr(""), description="Keys the API-key hashes; set by the runtime."
    )
    master_key: SecretStr = Field(
        default=SecretStr(""),
        description="Wraps the data keys: 32 random bytes in base64; set by the runtime.",
    )
    master_key_previous: SecretStr = Field(
        default=SecretStr(""),
        description="The master key before a rotation: still unwraps until rotate-master ran.",
    )
    data_dir: str = Field(default=".data", description="Embedded servers keep their data here.")

    backup_key: SecretStr = Field(
        default=SecretStr(""),
        description="Encrypts backups instead of a key derived from the master key: 32 random "
        "bytes in base64.",
    )
    backup_enabled: bool = Field(
        default=False, description="The job scheduler takes a backup every backup_interval_h."
    )
    backup_interval_h: float = Field(default=24.0, gt=0, le=24 * 31)
    backup_keep: int = Field(default=7, ge=1, le=10_000, description="Scheduled backups kept.")
    backup_dir: str = Field(
        default="", description="Where scheduled backups go; empty: <data_dir>/backups."
    )
    backup_pg_bin: str = Field(
        default="", description="A bin directory of PostgreSQL client tools to use first."
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    tls_cert: str = Field(
        default="",
        description="A PEM file holding the certificate chain and its private key: HTTPS on "
        "tls_port through HAProxy; empty: no TLS (put a TLS-terminating proxy in front).",
    )
    tls_port: int = Field(default=8443, ge=1, le=65535)
    # 0 means "fit the machine": `fitted` derives these from the CPUs Ray sees.
    replicas: int = Field(default=0, ge=0, le=64)
    fast_ingress: bool = Field(
        default=True, description="Serve's direct ingress behind HAProxy instead of its proxy."
    )
    # A request holds its slot through its gateway call (hundreds of ms with a real gateway),
    # so a replica needs room for many at once.
    max_ongoing_requests: int = Field(default=512, ge=1, le=10_000)

    ledger_shards: int = Field(default=0, ge=0, le=1024)
    shard_max_batch: int = Field(default=64, ge=1, le=1000)
    # A call answers when its slowest command has, so with a real gateway each call is out for
    # a gateway round trip: with few calls allowed, requests queue behind full calls (at 300 ms
    # and c=256, 16 calls gave 0.63 of the Little's-law bound, 64 gave 0.71). At 0 ms calls
    # return quickly and batches still form; 64 measured no slower there.
    shard_calls_in_flight: int = Field(
        default=64,
        ge=1,
        le=256,
        description="Calls one replica keeps in flight to each shard (each carries a batch).",
    )
    shard_stage_transactions: int = Field(
        default=2,
        ge=1,
        le=16,
        description="Transactions one shard keeps in flight per stage (begin, finalize).",
    )
    shard_idle_evict_s: float = Field(default=300.0, gt=0)

    shard_db_pool_max: int = Field(
        default=4,
        ge=2,
        le=100,
        description=(
            "Connections per shard: its begin and finalize stages, recovery, loads; never "
            "fewer than both stages' transactions plus two."
        ),
    )
    shard_sweep_interval_s: float = Field(
        default=30.0, gt=0, le=3600, description="How often a shard runs recovery and expiry."
    )
    shard_settle_after_s: float = Field(
        default=30.0,
        ge=0,
        le=24 * 3600,
        description="How long a gateway timeout stays processing before the sweep settles it.",
    )

    db_pool_min: int = Field(default=1, ge=0, le=100)
    db_pool_max: int = Field(default=4, ge=1, le=200)
    db_acquire_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="Longest wait for a pooled connection before answering 503.",
    )

    max_amount: int = Field(
        default=99_999_999, ge=1, description="Largest amount one payment may carry, minor units."
    )
    authorization_window_h: int = Field(default=168, ge=1, le=24 * 31)
    idempotency_ttl_h: int = Field(default=24, ge=1, le=24 * 30)
    api_key_cache_ttl_s: float = Field(default=2.0, ge=0, le=300)
    api_key_rotation_grace_s: float = Field(
        default=24 * 3600.0,
        ge=0,
        le=30 * 24 * 3600,
        description="How long a rotated-out secret keeps working.",
    )
    rate_limit_profile: Literal["default", "seed"] = Field(
        default="default",
        description="default: 100/s per key (bursts 200), admin 10/s; seed: 1,000/h, "
        "payments 500/h, admin 100/h. Failed authentications: 20/s per client address.",
    )
    rate_limit_timeout_ms: int = Field(
        default=250,
        ge=1,
        le=10_000,
        description="Longest wait for the rate limiter before Redis counts as down.",
    )
    trusted_proxies: tuple[str, ...] = Field(
        default=(),
        description="Networks (CIDR) of proxies whose X-Forwarded-For names the client address.",
    )
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    cors_allowed_origins: tuple[str, ...] = Field(
        default=(), description="Origins allowed cross-origin requests; none by default."
    )
    # A console session ends after this long without a request.
    console_idle_s: float = Field(default=1800.0, gt=0, le=7 * 24 * 3600)

    gateways: Annotated[tuple[str, ...], NoDecode] = Field(
        default=("sandbox",),
        min_length=1,
        description="The gateways to build, by registry name, comma-separated, in order of "
        "preference (engine/gateways/registry.py).",
    )
    gateway_routes: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description='Ordered gateways per "CUR" or "CUR/brand" (JSON object); "*" for the rest. '
        "Unrouted payments use `gateways` in order.",
    )
    circuit_failure_threshold: int = Field(
        default=5, ge=1, le=1000, description="Failures within the window that open a circuit."
    )
    circuit_window_s: float = Field(default=10.0, gt=0, le=3600)
    circuit_reset_s: float = Field(
        default=60.0, gt=0, le=3600, description="How long a circuit stays open before a probe."
    )
    circuit_probe_lease_s: float = Field(
        default=30.0, gt=0, le=600, description="How long one process holds the probe."
    )
    circuit_refresh_s: float = Field(
        default=0.25, gt=0, le=10, description="How often each process syncs its circuits."
    )
    circuit_breaker_enabled: bool = Field(
        default=True,
        description="False turns the circuit breakers off (every gateway always allowed, "
        "nothing counted or synced): only to measure what they cost.",
    )
    gateway_retry_initial_s: float = Field(
        default=1.0, gt=0, le=3600, description="First delay before a safe gateway call is retried."
    )
    gateway_retry_multiplier: float = Field(
        default=2.0, ge=1, le=10, description="Each retry's delay over the one before."
    )
    gateway_retry_max_delay_s: float = Field(
        default=300.0, gt=0, le=3600, description="Longest delay between two retries."
    )
    gateway_retries: int = Field(
        default=5, ge=0, le=20, description="Retries of a safe gateway call (0: none)."
    )
    gateway_retry_jitter: float = Field(
        default=0.2, ge=0, lt=1, description="Each delay varies by up to this share, at random."
    )
    gateway_retry_budget_s: float = Field(
        default=5.0,
        ge=0,
        le=3600,
        description="Most time one gateway call spends waiting between its retries, all "
        "together: the calls run while an API request or the recovery sweep waits for them.",
    )
    sandbox_latency_ms: int = Field(default=2, ge=0, le=60_000)
    sandbox_timeout_rate: float = Field(
        default=0.0, ge=0, le=1, description="Share of sandbox calls that time out (tests)."
    )
    # Bank debits (ACH): a debit (or a refund of one) is expected to settle this long after it
    # was made, on its customer's clock (a test clock's time, else real time), and the gateway
    # is asked for the outcome from then on; a settled debit may still be returned by the
    # payer's bank within the window after that, which paygrid asks about once per interval.
    bank_settlement_delay_s: float = Field(default=3 * 24 * 3600.0, ge=0, le=30 * 24 * 3600)
    bank_return_window_days: int = Field(default=60, ge=1, le=365)
    bank_return_check_interval_s: float = Field(default=24 * 3600.0, gt=0, le=30 * 24 * 3600)

    webhook_allow_private: bool = Field(
        default=False, description="Allow private and loopback webhook URLs (tests, local)."
    )
    webhook_dispatchers: int = Field(default=0, ge=0, le=256)
    webhook_timeout_s: float = Field(default=15.0, gt=0, le=120)
    webhook_retry_schedule_s: tuple[float, ...] = Field(default=(1, 2, 4, 8, 16), min_length=1)
    webhook_jitter: float = Field(default=0.2, ge=0, lt=1)
    webhook_max_delay_s: float = Field(default=300.0, gt=0)
    webhook_endpoint_concurrency: int = Field(default=8, ge=1, le=1000)
    webhook_disable_after_h: float = Field(default=120.0, gt=0)
    webhook_secret_grace_h: float = Field(default=24.0, ge=0)
    webhook_max_in_flight: int = Field(
        default=256, ge=1, le=10_000, description="Deliveries one dispatcher sends at once."
    )
    webhook_poll_s: float = Field(default=0.5, gt=0, le=60)
    job_schedulers: int = Field(default=1, ge=1, le=64)
    scheduler_poll_s: float = Field(default=0.5, gt=0, le=60)
    scheduler_lease_s: float = Field(
        default=300.0, gt=0, le=24 * 3600, description="How long a job runs before it is retaken."
    )

    subscription_retry_schedule_days: tuple[float, ...] = Field(
        default=(1, 3, 5),
        min_length=1,
        max_length=10,
        description="Dunning: retries of a declined renewal, days after it fell due.",
    )
    subscription_cancel_after_retries: bool = Field(
        default=True,
        description="After the last retry: cancel and mark the invoice uncollectible (true), "
        "or leave the subscription past_due (false).",
    )
    subscription_sweep_interval_s: float = Field(
        default=300.0,
        ge=1,
        le=24 * 3600,
        description="How often overdue subscriptions (a lost or dead-lettered job) are run.",
    )
    subscription_trial_notice_days: int = Field(
        default=3, ge=0, le=30, description="subscription.trial_will_end this long before."
    )
    # Measured (2,000 renewals due at once, 2 cores): 4 (64 shard calls in flight) 108/s; with
    # the scheduler's one shard call in flight, 32: 229/s, 64: 181/s.
    subscription_due_concurrency: int = Field(
        default=32,
        ge=1,
        le=256,
        description="Subscriptions one scheduler bills at once in a test clock's advance or the "
        "overdue sweep; its pool is sized to fit.",
    )

    # On by default, the dashboard running its job module only (`serve_app/job_api.py`): the
    # whole dashboard measured +226 MiB idle PSS (11 more processes), past the 1.5 GiB budget.
    jobs_api: bool = Field(
        default=True,
        description="`paygrid serve` runs Ray's dashboard on 127.0.0.1 with its job submission "
        "API only (`ray job submit`, the reports API); false leaves it off.",
    )
    jobs_api_port: int = Field(
        default=0, ge=0, le=65535, description="The dashboard's port; 0 picks a free one."
    )
    jobs_api_url: str = Field(
        default="",
        description="Where the reports API submits jobs (Ray's dashboard URL); `paygrid serve` "
        "sets it; empty answers 503.",
    )
    reports_dir: str = Field(
        default="", description="Where report jobs write their files; empty: <data_dir>/reports."
    )

    health_timeout_s: float = Field(
        default=1.0,
        gt=0,
        le=30,
        description="Longest a /health component check may take before it counts as down.",
    )
    health_cache_s: float = Field(
        default=1.0, ge=0, le=60, description="How long one /health report is reused."
    )

    tracing: TracingMode = Field(
        default="auto",
        description="Span exporter (engine/tracing): auto is otlp when OTEL_EXPORTER_OTLP_ENDPOINT "
        "is set, else off; memory keeps spans in Redis for tests and the request timeline.",
    )
    tracing_sample_ratio: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="Share of requests traced (parent-based: a caller's sampled flag wins) when "
        "OTEL_TRACES_SAMPLER is not set; that variable and its _ARG win when set.",
    )
    tracing_memory_ttl_s: int = Field(
        default=3600, ge=10, le=7 * 86400, description="How long the memory store keeps a trace."
    )

    metrics_publish_s: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="How often each process adds its metrics to the cluster's totals in Redis.",
    )
    metrics_trusted_networks: tuple[str, ...] = Field(
        default=(),
        description="Networks (CIDR) that may read /metrics without an admin key; see README.",
    )
    inflight_flush_s: float = Field(
        default=0.5,
        gt=0,
        le=1.0,
        description="How often each API replica publishes its requests in flight to Redis "
        "(/api/tracing/active); its entries expire a few intervals after it stops.",
    )

    audit_retention_days: int = Field(
        default=400,
        ge=MIN_AUDIT_RETENTION_DAYS,
        le=100 * 365,
        description="Audit entries, and AML alerts resolved, longer ago than this are purged "
        "daily; at least 365 (12 months).",
    )
    financial_retention_years: int = Field(
        default=7,
        ge=MIN_FINANCIAL_RETENTION_YEARS,
        le=100,
        description="An erased customer whose every financial row (payments, refunds, ledger "
        "entries, orders, invoices, subscriptions, saved methods, events) is older than this "
        "is purged whole, daily; at least 5 years.",
    )

    # AML monitoring in the ledger path (engine/compliance). Amount thresholds are in the
    # currency's major unit (10_000 is USD 10,000.00, JPY 10,000, KWD 10,000.000).
    aml_enabled: bool = Field(
        default=True, description="Screen purchases and authorizations with the AML rules."
    )
    aml_velocity_action: RuleAction = RuleAction.FLAG
    aml_velocity_window_s: int = Field(default=3600, ge=1, le=7 * 24 * 3600)
    aml_velocity_max_count: int = Field(
        default=20, ge=1, le=10_000, description="More payments than this in the window hit."
    )
    aml_velocity_max_amount: int = Field(
        default=50_000, ge=1, description="More than this (major units, per currency) hits."
    )
    aml_large_amount_action: RuleAction = RuleAction.FLAG
    aml_large_amount: int = Field(
        default=10_000, ge=1, description="A single payment of at least this (major units) hits."
    )
    aml_structuring_action: RuleAction = RuleAction.FLAG
    aml_structuring_window_h: int = Field(default=24, ge=1, le=24 * 31)
    aml_structuring_margin_pct: int = Field(
        default=10, ge=1, le=50, description="'Just under' the large amount: within this share."
    )
    aml_structuring_count: int = Field(
        default=3, ge=2, le=100, description="This many just-under payments in the window hit."
    )
    aml_refund_action: RuleAction = RuleAction.FLAG
    aml_refund_window_h: float = Field(
        default=1.0, gt=0, le=24 * 31, description="A refund this soon after the purchase hits."
    )
    aml_cards_action: RuleAction = RuleAction.BLOCK
    aml_cards_window_h: int = Field(default=24, ge=1, le=24 * 31)
    aml_cards_max: int = Field(
        default=5, ge=1, le=64, description="More distinct cards than this in the window hit."
    )
    aml_history_max_customers: int = Field(
        default=200_000, ge=100, le=10_000_000, description="Customers one shard keeps history of."
    )

    @field_validator("subscription_retry_schedule_days")
    @classmethod
    def _retry_days(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(b <= a for a, b in zip((0.0, *value), value, strict=False)) or value[-1] > 60:
            raise ValueError("retry days must rise strictly, from above 0 to at most 60")
        return value

    @field_validator("metrics_trusted_networks")
    @classmethod
    def _metrics_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for network in value:
            ipaddress.ip_network(network, strict=False)  # a bad one stops start-up, named
        return value

    @field_validator("gateways", mode="before")
    @classmethod
    def _gateway_names(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(name.strip() for name in value.split(",") if name.strip())
        return value

    @field_validator("gateways")
    @classmethod
    def _distinct_gateways(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("a gateway is named twice")
        return value

    @model_validator(mode="after")
    def _routes_name_gateways(self) -> Settings:
        for route, names in self.gateway_routes.items():
            unknown = [n for n in names if n not in self.gateways]
            if not names or unknown:
                raise ValueError(
                    f"gateway_routes[{route!r}] must name gateways of PAYGRID_GATEWAYS "
                    f"{list(self.gateways)}, not {unknown or 'none'}"
                )
        return self

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(str(ip_network(v, strict=False)) for v in value)

    @field_validator("master_key", "master_key_previous", "backup_key")
    @classmethod
    def _master_key(cls, value: SecretStr) -> SecretStr:
        # A bad key stops start-up here, named, rather than at the first card saved.
        if value.get_secret_value():
            decode_master_key(value.get_secret_value())
        return value

    def fitted(self, cpus: int) -> Settings:
        """These settings with every count left at 0 derived from `cpus`, the CPUs of the
        machine or cluster. Measured on two cores: one replica and one shard beat any larger
        count, since each process spends CPU the database and the others need; the counts grow
        with the cores (see the README's scaling table)."""
        cpus = max(1, cpus)
        chosen = {
            "replicas": max(1, cpus // 2),
            "ledger_shards": max(1, cpus // 4),
            # Two at least: delivery waits on receivers, not CPU, and one keeps sending while the
            # other restarts.
            "webhook_dispatchers": max(2, cpus // 4),
        }
        return self.model_copy(
            update={name: value for name, value in chosen.items() if not getattr(self, name)}
        )

    def shard_db_pool(self) -> int:
        """A shard's pool size: room for every stage transaction in flight, and two more for
        recovery and balance loads, so a busy stage never makes them wait into a 503."""
        return max(self.shard_db_pool_max, 2 * self.shard_stage_transactions + 2)

    def scheduler_db_pool(self) -> int:
        """A job scheduler's pool size: a connection for each subscription billed at once, and
        two for the queue's claims and settles, so a due run never makes them wait."""
        return self.subscription_due_concurrency + 2

    def describe_counts(self) -> str:
        """The process counts, for the start-up banner."""
        return (
            f"{self.replicas} API replica(s), {self.ledger_shards} ledger shard(s), "
            f"{self.webhook_dispatchers} webhook dispatcher(s), {self.job_schedulers} job "
            "scheduler(s)"
        )

    def fingerprint(self) -> str:
        """A digest of every value, secrets included (hashed, never shown), and of the code
        (`engine.release`): two processes with the same fingerprint run the same release with
        the same settings."""
        values = {
            name: value.get_secret_value() if isinstance(value, SecretStr) else value
            for name, value in self.model_dump().items()
        }
        values["_code"] = code_digest()
        encoded = json.dumps(values, sort_keys=True, default=str).encode()
        return hashlib.sha256(encoded).hexdigest()[:16]

    @property
    def backups_path(self) -> str:
        """The directory scheduled backups go into."""
        return self.backup_dir or f"{self.data_dir}/backups"

    @property
    def reports_path(self) -> str:
        """The directory report jobs write into."""
        return self.reports_dir or f"{self.data_dir}/reports"

    @property
    def database_dsn(self) -> str:
        """The PostgreSQL DSN in clear, for the driver only: never log it."""
        return self.database_url.get_secret_value()

    @property
    def redis_dsn(self) -> str:
        """The Redis URL in clear, for the client only: never log it."""
        return self.redis_url.get_secret_value()

    @property
    def secret_bytes(self) -> bytes:
        """The API-key hashing secret as bytes."""
        return self.secret_key.get_secret_value().encode()
