"""Cheap unique ids that are version-4 UUIDs and differ where a person looks.

`uuid4()` reads the OS's random source on every call, and a pipeline makes two ids per step. So
each process draws its randomness once and counts. The id's first group is the count times an odd
constant (the golden ratio's 32 bits: a Weyl sequence, which spreads consecutive counts over the
whole range and repeats none of 2**32), mixed with a random key; the second group carries the
count's higher bits, mixed with 16 random ones; the rest (the version digit, 12 random bits, the variant and 62 random bits)
is fixed for the process. So consecutive ids differ from their first digit on (a person tells two
runs apart, and types a short prefix of one), never repeat within a process (for 2**48 ids), and
two processes share nothing but by chance. A forked child draws again, so parent and child never
collide. About 0.3 µs an id, where `uuid4()` takes 2.

A run's id also carries the day the run started (`new_run_id`): a version-8 UUID whose second
group is that day (`contract/run_ids.py`), so that the server finds the partition of every event
of the run from its id alone. The count's higher bits move to the third group."""

from __future__ import annotations

import itertools
import os
import time
import uuid

from .contract.run_ids import MAX_DAY_NUMBER

# Odd, so that multiplying by it permutes the integers modulo 2**32.
_STEP = 0x9E3779B1
_MASK32 = 0xFFFFFFFF

_key = 0
_key2 = 0
_rest = ""
_run_rest = ""
_key3 = 0
_counter = itertools.count()


def _reseed() -> None:
    global _key, _key2, _key3, _rest, _run_rest, _counter
    _key = int.from_bytes(os.urandom(4), "big")
    _key2 = int.from_bytes(os.urandom(2), "big")
    _key3 = int.from_bytes(os.urandom(2), "big") & 0xFFF
    hex_ = uuid.uuid4().hex
    # The version digit and 12 random bits, then the variant digit (8 to b) and 62 random bits.
    _rest = f"-4{hex_[13:16]}-{hex_[16:20]}-{hex_[20:]}"
    _run_rest = f"-{hex_[16:20]}-{hex_[20:]}"
    _counter = itertools.count()


def new_id() -> str:
    """A new id: a version-4 UUID, unique across processes, unlike its neighbours in its first digits."""
    k = next(_counter)
    # %-formatting: a quarter faster than the f-string here, on a path taken twice a step.
    return "%08x-%04x%s" % (((k * _STEP) ^ _key) & _MASK32, (k >> 32) ^ _key2, _rest)  # noqa: UP031


def new_run_id(started: float | None = None) -> str:
    """A new run id: a version-8 UUID whose second group is the UTC day of `started` (seconds since
    the epoch, default now), unique across processes, unlike its neighbours in its first digits."""
    k = next(_counter)
    day = min(max(int((time.time() if started is None else started) // 86400), 0), MAX_DAY_NUMBER)
    return "%08x-%04x-8%03x%s" % (((k * _STEP) ^ _key) & _MASK32, day, ((k >> 32) ^ _key3) & 0xFFF, _run_rest)  # noqa: UP031


_reseed()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)
