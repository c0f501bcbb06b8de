"""A worker's upkeep, with one owner: periodic jobs (settling artifact rows a crash left pending,
pruning the ingest ledger) run in one thread that `stop()` ends, so that gunicorn's worker exit
and the tests can stop them, and nothing outlives the pool it uses."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """`run` every `every_seconds`, first one interval after the start."""

    name: str
    every_seconds: float
    run: Callable[[], object]


class Background:
    """Periodic jobs in one daemon thread; a failing job is logged and tried again next time."""

    def __init__(self, jobs: list[Job]) -> None:
        self.jobs = [job for job in jobs if job.every_seconds > 0]
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Background:
        if self.jobs and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="xray-background", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> bool:
        """Ask the thread to end and wait for it (a job under way finishes first); whether it did."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        due = {job.name: time.monotonic() + job.every_seconds for job in self.jobs}
        while not self._stopping.is_set():
            now = time.monotonic()
            for job in self.jobs:
                if due[job.name] <= now and not self._stopping.is_set():
                    try:
                        job.run()
                    except Exception as exc:  # PostgreSQL or the store down: try again next time
                        log.warning("%s failed: %s", job.name, type(exc).__name__)
                    due[job.name] = time.monotonic() + job.every_seconds
            self._stopping.wait(max(0.0, min(due.values()) - time.monotonic()))
