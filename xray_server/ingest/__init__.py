"""The write path: run creation and event batches become rows (`rows.py`), merged by the SQL in
`merge.py`. Nothing here reads for the API, and nothing here imports the read path."""

from xray_server.ingest.batch import BatchResult, ingest_events
from xray_server.ingest.labels import record_label, record_labels
from xray_server.ingest.runs import create_run

__all__ = ["BatchResult", "create_run", "ingest_events", "record_label", "record_labels"]
