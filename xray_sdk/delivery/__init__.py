"""Getting events to the server without ever blocking the pipeline: the bounded queue and its
thread (`worker.py`), HTTP (`transport.py`)."""
