"""Artifact content: the evidence when it was kept, a clear reason when it was not."""
from __future__ import annotations

from flask import Blueprint, Response

from .. import query
from ..app import get_db, get_settings, get_store
from ..errors import ApiError, NotFound
from ..stores import ObjectMissing, StoreUnavailable

bp = Blueprint("artifacts", __name__, url_prefix="/api/v1")


class ArtifactStoreUnavailable(ApiError):
    status = 503
    code = "artifact_store_unavailable"


@bp.get("/artifacts/<artifact_id>")
def get_artifact(artifact_id: str):
    """The artifact's bytes; 404 `artifact_dropped` (with the reason) or 503 if the store is down."""
    row = query.find_artifact(get_db(), artifact_id)
    if row["status"] != "stored":
        error = NotFound(f"artifact {row['artifact_id']} was not kept: {row['drop_reason'] or row['status']}",
                         {"status": row["status"], "drop_reason": row["drop_reason"]})
        error.code = "artifact_dropped" if row["status"] == "dropped" else f"artifact_{row['status']}"
        raise error
    try:
        data = get_store().get(row["store_key"])
    except ObjectMissing:
        raise NotFound("the artifact's object is gone from the store (deleted outside X-Ray?)",
                       {"status": "missing"}) from None
    except StoreUnavailable as exc:
        raise ArtifactStoreUnavailable(f"the artifact store is unavailable: {exc}; the run's steps and "
                                       "metrics are still readable", headers={
                                           "Retry-After": str(get_settings().retry_after_seconds)}) from None
    return Response(data, mimetype=row["content_type"] or "application/octet-stream")
