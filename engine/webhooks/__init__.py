"""Webhooks: endpoints, signed at-least-once delivery with retries, and the dead-letter queue."""
