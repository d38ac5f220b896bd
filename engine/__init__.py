"""Domain logic and infrastructure that runs without Ray: money, state machines, gateways,
repositories, idempotency, configuration, migrations and the operator CLI.

`PUBLIC_MODULES` is the engine's interface to the outer layers: the only modules `actors/` and
`serve_app/` may import (tests/engine/test_layering.py checks it). Services, the runtime
builders that wire them, and the types that cross into routes and actors are public;
repositories (the SQL), the steps of the money path and the database pool stay inside.
"""

PUBLIC_MODULES = frozenset(
    {
        "engine.auth.keys",
        "engine.batching",
        "engine.cli",
        "engine.config",
        "engine.customers.models",
        "engine.customers.sealing",
        "engine.customers.service",
        "engine.database_admin.models",
        "engine.database_admin.service",
        "engine.db.database",
        "engine.db.migrations",
        "engine.errors",
        "engine.events.models",
        "engine.health",
        "engine.keys.keyring",
        "engine.ledger.entries",
        "engine.ledger.reads",
        "engine.payment_methods.models",
        "engine.payment_methods.service",
        "engine.payments.commands",
        "engine.payments.intake",
        "engine.payments.reads",
        "engine.payments.requests",
        "engine.payments.states",
        "engine.plans.models",
        "engine.plans.service",
        "engine.plans.states",
        "engine.principal",
        "engine.privacy.service",
        "engine.queueing.models",
        "engine.queueing.states",
        "engine.records.models",
        "engine.records.service",
        "engine.runtime.gateway",
        "engine.runtime.local",
        "engine.runtime.shard",
        "engine.runtime.subscriptions",
        "engine.runtime.webhooks",
        "engine.runtime.workers",
        "engine.sharding",
        "engine.shared_state",
        "engine.subscriptions.intake",
        "engine.subscriptions.service",
        "engine.subscriptions.states",
        "engine.test_clocks.service",
        "engine.webhooks.models",
        "engine.webhooks.states",
    }
)
