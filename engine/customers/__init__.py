"""Customers: their sealed profiles, created, read and rectified."""
