"""Formatting values for events: timestamps, labels and errors, never raising."""

from __future__ import annotations

import time
import traceback
from typing import Any

from .contract.bounds import truncate_text
from .contract.limits import Limits
from .serialize import clean_text, dumps, to_json_safe

_LABELS: dict[str, str] = {}  # step and pipeline names recur: clean each once (uncut)


_second: tuple[int, str] = (-1, "")


def now_iso() -> str:
    """The current time as RFC 3339 in UTC (the date and time to the second are formatted
    once per second: two timestamps a step made this worth it)."""
    global _second
    now = time.time()
    whole = int(now)
    cached = _second
    if cached[0] != whole:
        cached = _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{cached[1]}.{int((now - whole) * 1_000_000):06d}+00:00"


def label(value: Any, max_chars: int, *, remember: bool = True) -> str:
    """A short printable name for anything, never raising. `remember=False` for values that
    seldom recur (ids), which would otherwise fill the cache meant for names."""
    if isinstance(value, str):
        cleaned = _LABELS.get(value)
        if cleaned is None:
            cleaned = clean_text(value)
            if remember and len(_LABELS) < 4096:
                _LABELS[value] = cleaned
    else:
        safe = to_json_safe(value)
        cleaned = clean_text(safe if isinstance(safe, str) else dumps(safe).decode("utf-8"))
    return cleaned[:max_chars] or "unnamed"


def bounded_summary(value: Any, limit: int) -> Any:
    """`value` if its JSON fits `limit` bytes, else a marked preview (as the server would)."""
    if value is None or isinstance(value, (bool, float)) or (isinstance(value, int) and abs(value) < 2**63):
        return value
    if isinstance(value, str) and len(value) * 4 <= limit:
        return value
    data = dumps(value)
    if len(data) <= limit:
        return value  # small: encoding it twice costs less than splicing fragments
    preview = data[: limit // 4].decode("utf-8", errors="ignore")
    return {"_truncated": True, "_original_bytes": len(data), "preview": preview + "…"}


def error_info(error: BaseException | Any, limits: Limits) -> dict[str, Any]:
    """An exception (or anything else given as an error) as {type, message, stack}."""
    if not isinstance(error, BaseException):
        text = label(error, 10**9)
        return {"type": "Error", "message": truncate_text(text, limits.max_error_message_chars)[0]}
    try:
        message = str(error)
    except Exception:
        message = f"<unprintable {type(error).__name__}>"
    try:
        stack = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    except Exception:
        stack = ""
    return {
        "type": type(error).__qualname__[:200],
        "message": truncate_text(clean_text(message), limits.max_error_message_chars)[0],
        "stack": truncate_text(clean_text(stack), limits.max_error_stack_chars)[0] if stack else None,
    }
