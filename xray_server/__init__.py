"""X-Ray server: a thin Flask layer over ingest and query modules and PostgreSQL."""
from .app import create_app

__all__ = ["create_app"]
