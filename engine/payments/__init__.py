"""Payments: purchase, authorize, capture, void and refund, each a two-phase money command."""
