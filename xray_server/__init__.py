"""X-Ray server. Rooms, each a package (ARCHITECTURE.md has the map and who may import what):

- `web/`: the Flask app, its routes, request reading, error answers, the OpenAPI document;
- `ingest/`: the write path; `query/`: the read path; `analysis/`: explain, diff, why-dropped;
- `artifacts/`: the cold tier; `storage/`: PostgreSQL; `runtime/`: settings and processes;
- `schemas/`: the wire shapes (marshmallow); `errors.py`, `ids.py`, `jsonio.py`: shared by all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xray_server.web.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Lazy, so that `import xray_server.analysis` (the CLI, scripts) does not load Flask.
    if name == "create_app":
        from xray_server.web.app import create_app

        return create_app
    raise AttributeError(name)
