"""The detached actors of one paygrid instance: getting them, and retiring stale ones.

Detached actors outlive the Serve app and the process that created them, and keep the
`Settings` they were created with: a replica that starts later gets the running actor by name,
whatever its settings. So `paygrid serve` calls `retire_stale` before it deploys: an actor whose
settings differ from the current ones, or whose index is beyond the configured count, is killed
and the deployment creates it afresh. A restart therefore picks up new settings.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import ray
from ray.actor import ActorHandle

from actors.job_scheduler import JobScheduler
from actors.ledger_shard import LedgerShard
from actors.options import (
    NAMESPACE,
    job_scheduler_options,
    ledger_shard_options,
    webhook_dispatcher_options,
)
from actors.webhook_dispatcher import WebhookDispatcher
from engine.config import Settings

log = logging.getLogger("paygrid.fleet")

_FINGERPRINT_TIMEOUT_S = 30.0

# Ray types a handle by its actor class; callers only ever use `.method.remote()` on these.
Handle = ActorHandle[Any]


def _alive_nodes() -> list[str]:
    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    return sorted(str(n["NodeID"]) for n in nodes if n["Alive"])


def _spawn(
    actor_class: Any,
    options: Callable[[int, str | None], dict[str, Any]],
    settings: Settings,
    count: int,
    *,
    first_node: int = 0,
) -> list[Handle]:
    """The actors of one kind, created where missing, dealt round-robin over the live nodes
    from `first_node` on (so the kinds do not all start on the same node)."""
    nodes = _alive_nodes()
    return [
        actor_class.options(**options(i, nodes[(first_node + i) % len(nodes)])).remote(settings, i)
        for i in range(count)
    ]


def ledger_shards(settings: Settings) -> list[Handle]:
    """The instance's ledger shards, created where missing."""
    return _spawn(LedgerShard, ledger_shard_options, settings, settings.ledger_shards)


def webhook_dispatchers(settings: Settings) -> list[Handle]:
    """The instance's webhook dispatchers, created where missing."""
    return _spawn(
        WebhookDispatcher,
        webhook_dispatcher_options,
        settings,
        settings.webhook_dispatchers,
        first_node=settings.ledger_shards,
    )


def job_schedulers(settings: Settings) -> list[Handle]:
    """The instance's job schedulers, created where missing."""
    return _spawn(
        JobScheduler,
        job_scheduler_options,
        settings,
        settings.job_schedulers,
        first_node=settings.ledger_shards + settings.webhook_dispatchers,
    )


# Name prefix of each kind of actor → how many the settings ask for.
_KINDS: dict[str, Callable[[Settings], int]] = {
    "ledger-shard-": lambda s: s.ledger_shards,
    "webhook-dispatcher-": lambda s: s.webhook_dispatchers,
    "job-scheduler-": lambda s: s.job_schedulers,
    # One board of circuits; memory only, so retiring it with old settings loses nothing.
    "gateway-circuits-": lambda s: 1,
}


def _stale(name: str, settings: Settings) -> bool:
    for prefix, count in _KINDS.items():
        index = name.removeprefix(prefix)
        if index != name and index.isdigit():
            if int(index) >= count(settings):
                return True
            handle = ray.get_actor(name, namespace=NAMESPACE)
            ref: ray.ObjectRef[str] = handle.settings_fingerprint.remote()
            return ray.get(ref, timeout=_FINGERPRINT_TIMEOUT_S) != settings.fingerprint()
    return False


def _wait_until_gone(name: str) -> None:
    """A killed actor's name is released asynchronously; creating it again before then would
    return the dying one."""
    deadline = time.monotonic() + _FINGERPRINT_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:
            return
        time.sleep(0.05)
    raise RuntimeError(f"actor {name} is still registered after it was killed")


def retire_stale(settings: Settings) -> list[str]:
    """Kill the running actors whose settings differ from `settings` or whose index is beyond
    the configured count; returns their names. Call before deploying."""
    retired = []
    for entry in ray.util.list_named_actors(all_namespaces=True):
        if entry["namespace"] != NAMESPACE or not _stale(entry["name"], settings):
            continue
        ray.kill(ray.get_actor(entry["name"], namespace=NAMESPACE), no_restart=True)
        retired.append(entry["name"])
    for name in retired:
        _wait_until_gone(name)
    if retired:
        log.warning("retired actors started with other settings: %s", ", ".join(retired))
    return retired
