"""Invoices of subscriptions: their SQL (`repository.py`), apart from the subscriptions' own."""
