"""Saved payment methods: the card vault."""
