"""Capture policy: how values are bounded before they reach the hot tier.

Truncation is always visible: a cut string ends with a marker, and a JSON value too large
to keep is replaced by an object that says so and keeps a readable preview.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .limits import TRUNCATION_MARKER

# PostgreSQL refuses NUL in text and jsonb; lone surrogates are not valid Unicode.
UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")


def truncate_text(text: str, max_chars: int) -> tuple[str, bool]:
    """Cut `text` to at most `max_chars` characters, marker included; say whether it was cut."""
    if len(text) <= max_chars:
        return text, False
    marker = TRUNCATION_MARKER.format(dropped=len(text))
    keep = max(0, max_chars - len(marker))
    marker = TRUNCATION_MARKER.format(dropped=len(text) - keep)
    return text[:keep] + marker, True


def json_size(value: Any) -> int:
    """Bytes of `value` as compact UTF-8 JSON, the size the hot tier stores."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def bound_json(value: Any, max_bytes: int) -> tuple[Any, bool]:
    """Keep `value` if its JSON fits in `max_bytes`, else a marked preview of it."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    size = len(text.encode("utf-8"))
    if size <= max_bytes:
        return value, False
    # A quarter of the budget for the preview leaves room for the wrapper, even in UTF-8.
    preview, _ = truncate_text(text, max(16, max_bytes // 4))
    return {"_truncated": True, "_original_bytes": size, "preview": preview}, True
