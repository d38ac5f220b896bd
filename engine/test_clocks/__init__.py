"""Test clocks (sandbox only): frozen times customers live on, and the one clock source the
billing engine reads, which answers a test clock's time for its customers."""
