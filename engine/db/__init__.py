"""PostgreSQL access: the connection pool and the migration runner."""
