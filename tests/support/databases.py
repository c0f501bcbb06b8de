"""Throwaway databases on a real PostgreSQL server, for tests."""

from __future__ import annotations

import uuid
from contextlib import contextmanager

import psycopg
from psycopg import conninfo


@contextmanager
def throwaway_database(server_url: str, prefix: str):
    """A fresh database on `server_url`, dropped afterwards; None if we may not create one."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.errors.InsufficientPrivilege:
        yield None
        return
    try:
        yield conninfo.make_conninfo(server_url, dbname=name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
