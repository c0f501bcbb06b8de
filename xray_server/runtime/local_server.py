"""Run the X-Ray server under gunicorn as a child process: for `xray serve`'s callers that
need it in the background (the sample run, the demo, end-to-end tests)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def gunicorn_command(host: str, port: int) -> list[str]:
    """The command that serves X-Ray with its gunicorn settings."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "python:xray_server.runtime.gunicorn_conf",
        "-b",
        f"{host}:{port}",
        "xray_server.runtime.wsgi:app",
    ]


class LocalServer:
    """gunicorn serving X-Ray on a free local port, started and stopped by this object."""

    def __init__(
        self,
        env: Mapping[str, str | None] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        # A None value removes the variable, e.g. XRAY_DATABASE_URL to get the embedded database.
        merged = {**os.environ, **(env or {})}
        self.env = {key: value for key, value in merged.items() if value is not None}
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self._log = None

    @property
    def base_url(self) -> str:
        """Where the API answers, such as http://127.0.0.1:8123."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> LocalServer:
        """Start gunicorn and wait until /readyz answers 200."""
        # Held open for gunicorn's life; stop() closes it.
        self._log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            gunicorn_command(self.host, self.port),
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}; see {self.log_path}")
            if self._ready():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"X-Ray did not become ready within {timeout:.0f}s; see {self.log_path}")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.base_url + "/readyz", timeout=2) as response:
                return response.status == 200 and json.load(response).get("status") == "ready"
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def stop(self, timeout: float = 20.0) -> None:
        """Ask gunicorn to stop gracefully; kill it if it will not."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
        self.process = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
