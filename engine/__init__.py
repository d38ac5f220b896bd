"""Domain logic and infrastructure that runs without Ray: money, state machines, gateways,
repositories, idempotency, configuration, migrations and the operator CLI."""
