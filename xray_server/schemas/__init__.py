"""Marshmallow schemas for everything the API accepts. Pure: no database, no Flask."""
