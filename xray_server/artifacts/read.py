"""Reading evidence back: an artifact's row by id, and its content when it was kept."""
from __future__ import annotations

from typing import Any

from xray_sdk.contract.vocabulary import ArtifactStatus

from xray_server.artifacts.stores import ArtifactStore, ObjectMissing, StoreUnavailable
from xray_server.errors import ApiError, NotFound
from xray_server.ids import parse_uuid
from xray_server.storage.pool import Database


class ArtifactStoreUnavailable(ApiError):
    status = 503
    code = "artifact_store_unavailable"


def find_artifact(db: Database, artifact_id: str) -> dict[str, Any]:
    """An artifact's row by id, or a 404 that says so."""
    artifact_id = parse_uuid(artifact_id, "artifact_id", "as listed in GET /api/v1/runs/<run_id>")
    with db.connection() as conn:
        row = conn.execute("SELECT * FROM artifacts WHERE artifact_id = %s LIMIT 1", (artifact_id,)).fetchone()
    if row is None:
        raise NotFound(f"no artifact {artifact_id}", {"artifact_id": artifact_id})
    return row


def read_artifact(db: Database, store: ArtifactStore, artifact_id: str,
                  retry_after_seconds: int = 2) -> tuple[bytes, str]:
    """The artifact's bytes and content type; 404 `artifact_dropped` (with the reason) when it was
    not kept, 503 `artifact_store_unavailable` when the store is down."""
    row = find_artifact(db, artifact_id)
    if row["status"] != ArtifactStatus.STORED.value:
        error = NotFound(f"artifact {row['artifact_id']} was not kept: {row['drop_reason'] or row['status']}",
                         {"status": row["status"], "drop_reason": row["drop_reason"]})
        error.code = "artifact_dropped" if row["status"] == ArtifactStatus.DROPPED.value else f"artifact_{row['status']}"
        raise error
    try:
        data = store.get(row["store_key"])
    except ObjectMissing:
        raise NotFound("the artifact's object is gone from the store (deleted outside X-Ray?)",
                       {"status": "missing"}) from None
    except StoreUnavailable as exc:
        raise ArtifactStoreUnavailable(f"the artifact store is unavailable: {exc}; the run's steps and "
                                       "metrics are still readable",
                                       headers={"Retry-After": str(retry_after_seconds)}) from None
    return data, row["content_type"] or "application/octet-stream"
