"""The server's reading of ids: any form `uuid.UUID` takes becomes its canonical text, and the
fast path for text already canonical changes nothing of that."""

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xray_server.errors import ValidationFailed
from xray_server.ids import canonical_uuid, parse_run_id
from xray_server.ingest.rows import uuid_array


@given(st.uuids())
def test_every_spelling_of_a_uuid_reads_as_its_canonical_text(value):
    canonical = str(value)
    for spelling in (canonical, canonical.upper(), value.hex, f"{{{canonical}}}", f"urn:uuid:{canonical}"):
        assert canonical_uuid(spelling) == canonical


@pytest.mark.parametrize(
    "value",
    ["", "not-a-uuid", "0" * 31, "g" * 32, "12345678-1234-1234-1234-1234567890123", None, 7, ["x"]],
)
def test_what_is_not_a_uuid_is_refused_as_uuid_refuses_it(value):
    with pytest.raises((ValueError, TypeError, AttributeError)):
        uuid.UUID(value)
    with pytest.raises((ValueError, TypeError, AttributeError)):
        canonical_uuid(value)
    if isinstance(value, str):
        with pytest.raises(ValidationFailed):
            parse_run_id(value)


def test_a_canonical_text_subclass_is_read_as_uuid_reads_it():
    class Odd(str):
        pass

    text = str(uuid.uuid4())
    assert canonical_uuid(Odd(text)) == text and type(canonical_uuid(Odd(text))) is str


def test_an_id_array_is_read_by_postgresql_as_the_same_ids(db):
    ids = [str(uuid.uuid4()) for _ in range(3)]
    with db.connection() as conn:
        for given_ids in (ids, []):
            row = conn.execute("SELECT %s::uuid[] AS ids", (uuid_array(given_ids),)).fetchone()
            assert [str(i) for i in row["ids"]] == given_ids
