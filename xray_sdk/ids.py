"""Cheap unique ids in UUID form. `uuid4()` reads the OS's random source on every call; a
pipeline makes two ids per step, so instead each process draws 122 random bits once and
counts: a random UUID prefix (with its version and variant bits) and a 48-bit counter that
starts at a random value. A forked child draws again, so parent and child never collide."""

from __future__ import annotations

import itertools
import os
import uuid

_prefix = ""
_counter = itertools.count()


def _reseed() -> None:
    global _prefix, _counter
    hex_ = uuid.uuid4().hex
    _prefix = f"{hex_[:8]}-{hex_[8:12]}-{hex_[12:16]}-{hex_[16:20]}-"
    _counter = itertools.count(int(hex_[20:], 16))


def new_id() -> str:
    """A new id, unique across processes, formatted as a version-4 UUID."""
    return _prefix + format(next(_counter) & 0xFFFFFFFFFFFF, "012x")


_reseed()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)
