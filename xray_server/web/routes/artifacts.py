"""Artifact content: the evidence when it was kept, a clear reason when it was not."""

from __future__ import annotations

from flask import Blueprint, Response

from xray_server.artifacts.read import read_artifact
from xray_server.web.context import get_db, get_settings, get_store

bp = Blueprint("artifacts", __name__, url_prefix="/api/v1")


@bp.get("/artifacts/<artifact_id>")
def get_artifact(artifact_id: str) -> Response:
    """The artifact's bytes; 404 `artifact_dropped` (with the reason) or 503 if the store is down."""
    data, content_type = read_artifact(get_db(), get_store(), artifact_id, get_settings().retry_after_seconds)
    return Response(data, mimetype=content_type)
