"""Cheap unique ids that are version-4 UUIDs and differ where a person looks.

`uuid4()` reads the OS's random source on every call, and a pipeline makes two ids per step. So
each process draws a random key and a random tail once, and counts: the counter goes through a
bijection of 60 bits (multiplication by an odd constant, then an exclusive-or with the key), whose
bits fill the id's first 16 hex digits around the version digit. Consecutive ids of one process
therefore differ from their first digit on (a person tells two runs apart, and types a short
prefix of one), never repeat within a process (a bijection, for 2**60 ids), and two processes
share nothing but by chance (their tails are 62 random bits). A forked child draws again, so
parent and child never collide."""

from __future__ import annotations

import itertools
import os
import uuid

_BITS = 60
_MASK = (1 << _BITS) - 1
# Odd, so multiplying by it permutes the integers modulo 2**60; the golden ratio's bits spread
# consecutive counts over the whole range.
_MIX = 0x9E3779B97F4A7C1 | 1

_key = 0
_tail = ""
_counter = itertools.count()


def _reseed() -> None:
    global _key, _tail, _counter
    _key = int.from_bytes(os.urandom(8), "big") & _MASK
    # The variant digit (8 to b) and 62 random bits, fixed for the process.
    hex_ = uuid.uuid4().hex
    _tail = f"{hex_[16:20]}-{hex_[20:]}"
    _counter = itertools.count()


def new_id() -> str:
    """A new id: a version-4 UUID, unique across processes, unlike its neighbours in its first digits."""
    n = ((next(_counter) * _MIX) ^ _key) & _MASK
    h = format(n, "015x")
    return f"{h[:8]}-{h[8:12]}-4{h[12:15]}-{_tail}"


_reseed()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)
