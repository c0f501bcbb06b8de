"""The fast JSON paths decode and encode exactly what the standard library does, or hand over."""

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xray_server.jsonio import NotFast, dumps, iso_utc, loads_fast

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**80), 2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(JSON_VALUES)
def test_fast_decoding_matches_json_or_hands_over(value):
    raw = json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    try:
        fast = loads_fast(raw)
    except NotFast:
        return
    expected = json.loads(raw.decode("utf-8"))
    assert fast == expected
    assert json.dumps(fast) == json.dumps(expected)  # same types too: an int stays an int


@pytest.mark.parametrize(
    "raw",
    [
        b"123456789012345678901234567890",
        b"-9223372036854775809",
        b'{"a": -9300000000000000000}',
        b'["\\ud800"]',
        b"1e400",
        b"NaN",
        b"[1,]",
    ],
)
def test_what_orjson_would_read_differently_or_refuse_goes_to_json(raw):
    with pytest.raises(NotFast):
        loads_fast(raw)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_encoding_round_trips_through_json(value):
    assert json.loads(dumps(value).decode("utf-8", "surrogatepass")) == value


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))])
    )
)
def test_iso_utc_writes_what_isoformat_writes_in_utc(moment):
    assert iso_utc(moment) == moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def test_a_lone_surrogate_echoed_in_an_error_is_still_encoded():
    value = {"\ud800": ["Unknown field."], "event_id": "\udfff"}
    assert json.loads(dumps(value)) == value


def test_a_number_past_64_bits_beside_a_time_and_an_id_is_written_as_orjson_would():
    """orjson refuses the number, `json` takes over and must still write the time and the id (a
    run row of a multi-run batch, with its start and a client's huge metadata number, was a 500)."""
    at, some_id = datetime(2026, 12, 2, 13, 46, 52, 610912, tzinfo=UTC), uuid.uuid4()
    assert json.loads(dumps({"at": at, "id": some_id, "n": 2**70})) == {
        "at": at.isoformat(),
        "id": str(some_id),
        "n": 2**70,
    }
    assert json.loads(dumps({"at": at, "id": some_id})) == {"at": at.isoformat(), "id": str(some_id)}  # orjson's own
