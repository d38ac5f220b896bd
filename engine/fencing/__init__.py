"""Fenced ownership of virtual slots: a shard writes for a slot only while it holds the slot's
epoch in PostgreSQL."""
