"""The write path: run creation, event batches and multi-run batches become rows (`rows.py`), merged by the SQL in
`merge.py`. Nothing here reads for the API, and nothing here imports the read path."""

from xray_server.ingest.batch import BatchResult, ingest_events
from xray_server.ingest.labels import record_label, record_labels
from xray_server.ingest.multi_run import RunsBatchResult, ingest_batch
from xray_server.ingest.runs import create_run

__all__ = [
    "BatchResult",
    "RunsBatchResult",
    "create_run",
    "ingest_batch",
    "ingest_events",
    "record_label",
    "record_labels",
]
