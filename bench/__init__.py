"""Bounded loopback benchmarks; results tables are quoted in the README."""
