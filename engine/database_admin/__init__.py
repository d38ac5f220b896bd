"""Database operations for operators: health of the pool and server, where the migrations
stand, and statistics (table sizes, row counts, transaction totals)."""
