"""The data contract: numbered SQL migrations and the pydantic API models. No I/O."""
