"""Wiring: building each process's collaborators from `Settings`, and the embedded servers."""
