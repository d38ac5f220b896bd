"""The benchmarks' helpers run on the engine tests' throwaway databases."""

from tests.engine.conftest import fresh_dsn, migrated_template, module_dsn

__all__ = ["fresh_dsn", "migrated_template", "module_dsn"]
