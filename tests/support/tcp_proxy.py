"""A TCP proxy a test can cut and restore, to make a real PostgreSQL vanish and come back
for one client without disturbing the rest of the test session."""

from __future__ import annotations

import socket
import threading


class TcpProxy:
    """Forward 127.0.0.1:<port> to a TCP address or a Unix socket path."""

    def __init__(self, target: tuple[str, int] | str) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self) -> None:
        """Refuse new connections and break every open one, as a dead server would."""
        with self._lock:
            listener, self._listener = self._listener, None
            doomed, self._sockets = self._sockets, set()
        if listener is not None:
            # close() alone leaves the port listening while a thread blocks in accept():
            # shutdown() wakes it, so the port is free for restore() at once.
            _close(listener)
        for sock in doomed:
            _close(sock)

    def restore(self) -> None:
        """Accept connections again, on the same port."""
        self.start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = self._connect_upstream()
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._listener is not listener:
                    _close(client), _close(upstream)
                    return
                self._sockets |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _connect_upstream(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX) if isinstance(self.target, str) else socket.socket()
        sock.connect(self.target)
        return sock

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _close(source), _close(sink)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
