"""Formatting values for events: timestamps, labels and errors, never raising."""
from __future__ import annotations

import time
import traceback
from typing import Any

from .capture import truncate_text
from .limits import Limits
from .serialize import clean_text, dumps, to_json_safe

_LABELS: dict[str, str] = {}  # step and pipeline names recur: clean each once


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


def label(value: Any, max_chars: int) -> str:
    """A short printable name for anything, never raising."""
    if isinstance(value, str):
        cached = _LABELS.get(value)
        if cached is not None and len(cached) <= max_chars:
            return cached
    else:
        safe = to_json_safe(value)
        value = safe if isinstance(safe, str) else dumps(safe).decode("utf-8")
    text = clean_text(value)[:max_chars] or "unnamed"
    if len(_LABELS) < 4096 and isinstance(value, str):
        _LABELS[value] = text
    return text


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
