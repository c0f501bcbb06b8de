"""The SDK's ids: real version-4 UUIDs, unique, and unlike each other in their first digits, so a
person tells two runs apart and can type a short prefix of one."""

import os
import uuid

from xray_sdk.ids import new_id


def test_ids_are_version_4_uuids_with_the_rfc_variant():
    for value in (new_id() for _ in range(1000)):
        parsed = uuid.UUID(value)
        assert str(parsed) == value
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_consecutive_ids_differ_in_their_first_eight_digits_and_never_repeat():
    ids = [new_id() for _ in range(20000)]
    assert len(set(ids)) == len(ids)
    # The first group is a permutation of the count: no two of a process's first 2**32 ids share it.
    assert len({i[:8] for i in ids}) == len(ids)
    # And neighbours differ from the first digit on, not only at the end.
    assert sum(a[0] != b[0] for a, b in zip(ids, ids[1:], strict=False)) > 0.8 * len(ids)


def test_a_forked_child_draws_its_own_ids():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send its first ids back, and leave without running the test session
        os.write(write, ",".join(new_id() for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    child = set(os.read(read, 1 << 20).decode().split(","))
    os.waitpid(pid, 0)
    mine = {new_id() for _ in range(100)}
    assert len(child) == 100 and not child & mine
    assert {i[19:] for i in child}.isdisjoint({i[19:] for i in mine})  # their random tails differ
