"""Serve the OpenAPI document."""

from __future__ import annotations

from flask import Blueprint

from xray_server.web.openapi import build_spec

bp = Blueprint("openapi", __name__)


@bp.get("/api/v1/openapi.json")
def openapi_json():
    """The OpenAPI 3.0 document generated from the request schemas."""
    return build_spec()
