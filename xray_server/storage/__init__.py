"""PostgreSQL: the connection pool, the schema and its migrations, the embedded server."""
