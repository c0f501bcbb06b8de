"""The one syntax of a tag filter, shared by the CLI and the API: `key=value` or `key:value`."""

from __future__ import annotations

import re

# A key holds neither separator; the value is everything after the first one, separators included.
_SEPARATOR = re.compile(r"[:=]")


def split_tag(text: str) -> tuple[str, str]:
    """`key=value` or `key:value` as (key, value), split at the first `:` or `=`. ValueError when
    there is no separator or no key."""
    found = _SEPARATOR.search(text)
    if found is None or found.start() == 0:
        raise ValueError(f"{text!r} is not key=value or key:value")
    return text[: found.start()], text[found.end() :]
