"""Read a run's complete stored state, to compare two ways of delivering the same events."""

from __future__ import annotations


def snapshot(db, run_id: str) -> dict:
    with db.connection() as conn:
        run = conn.execute(
            "SELECT run_id, pipeline, entity, tags, metadata, status, outcome, error, implicit, "
            "started_at, ended_at, finish_event_id FROM runs WHERE run_id = %s",
            (run_id,),
        ).fetchone()
        steps = conn.execute("SELECT * FROM steps WHERE run_id = %s ORDER BY step_id", (run_id,)).fetchall()
        artifacts = conn.execute("SELECT * FROM artifacts WHERE run_id = %s ORDER BY artifact_id", (run_id,)).fetchall()
    for row in artifacts:
        row.pop("created_at")
    return {"run": run, "steps": steps, "artifacts": artifacts}
