"""Pydantic models of the REST API: requests (`...Create`) and responses (`...Public`)."""
