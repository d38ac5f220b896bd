"""The scheduler queue: durable jobs run at their time, at least once, with retries."""
