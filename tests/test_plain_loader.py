"""The fast loader for plain events: whatever it accepts, marshmallow accepts with an identical
result, and the events clients really send take it."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from tests.support.events import competitor_run, step_end
from xray_server.schemas.events import EVENT_SCHEMAS, load_event
from xray_server.schemas.plain import NotPlain, PlainLoader

LOADERS = {event_type: PlainLoader(schema) for event_type, schema in EVENT_SCHEMAS.items()}
NOW = datetime.now(UTC)
DEEP: list = [1]
for _ in range(40):
    DEEP = [DEEP]

# Values of every JSON kind, many of them wrong for the field they land in.
ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.sampled_from(
        [
            "",
            "x" * 300,
            "a\x00b",
            "\ud800",
            "ok",
            "filter",
            "llm",
            "step_end",
            "bogus",
            "error",
            str(uuid.uuid4()),
            uuid.uuid4().hex,
            "{" + str(uuid.uuid4()) + "}",
            "urn:uuid:" + str(uuid.uuid4()),
            NOW.isoformat(),
            (NOW - timedelta(days=400)).isoformat(),
            (NOW + timedelta(days=3)).isoformat(),
            NOW.replace(tzinfo=None).isoformat(),
            "2026-11-25",
            "2026-11-25T10:00:00Z",
            "20261125T100000+0000",
        ]
    ),
    st.lists(st.integers(), max_size=2),
    st.just([]),
    st.just({}),
    st.dictionaries(
        st.sampled_from(["candidates_in", "candidates_out", "k", "\x00"]),
        st.one_of(st.none(), st.integers(0, 10), st.text(max_size=3)),
        max_size=3,
    ),
    st.just({"type": "ValueError", "message": "boom"}),
    st.just([{"name": "a", "payload": [1]}]),
    st.just({"deep": DEEP}),
)
FIELD_NAMES = sorted({name for schema in EVENT_SCHEMAS.values() for name in schema.load_fields} | {"extra"})


def base_event(event_type: str) -> dict:
    if event_type == "run_finish":
        return {"event_id": str(uuid.uuid4()), "type": "run_finish", "ts": NOW.isoformat(), "status": "ok"}
    event = step_end(
        str(uuid.uuid4()),
        2,
        "compat_filter",
        "filter",
        metrics={"candidates_in": 100, "candidates_out": 5},
        why="kept matches",
    )
    if event_type == "step_start":
        event = {k: event[k] for k in ("event_id", "ts", "step_id", "seq", "name", "step_type")}
    event["type"] = event_type
    return event


@st.composite
def events(draw):
    event_type = draw(st.sampled_from(sorted(EVENT_SCHEMAS)))
    event = base_event(event_type)
    for name in draw(st.lists(st.sampled_from(FIELD_NAMES), max_size=4, unique=True)):
        if draw(st.booleans()):
            event.pop(name, None)
        else:
            event[name] = draw(ODD_VALUES)
    return event_type, event


@settings(max_examples=3000, deadline=None)
@given(events())
def test_what_the_fast_loader_accepts_marshmallow_loads_identically(typed_event):
    event_type, event = typed_event
    schema = EVENT_SCHEMAS[event_type]
    try:
        fast = LOADERS[event_type].load(event)
    except NotPlain:
        return  # marshmallow alone decides: nothing to compare
    try:
        slow = schema.load(event)
    except ValidationError as exc:
        pytest.fail(f"the fast loader accepted an event marshmallow refuses: {exc.messages}")
    assert fast == slow


@pytest.mark.parametrize("event", competitor_run(drop_ratio_bad=True), ids=lambda e: e["type"])
def test_the_events_clients_send_take_the_fast_path(event):
    assert LOADERS[event["type"]].load(event) == EVENT_SCHEMAS[event["type"]].load(event)


def test_an_event_the_fast_loader_refuses_still_gets_marshmallows_field_errors():
    event = base_event("step_end")
    event["seq"] = "three"
    with pytest.raises(NotPlain):
        LOADERS["step_end"].load(event)
    with pytest.raises(ValidationError) as refused:
        load_event(event)
    assert "seq" in refused.value.messages


def test_an_event_with_an_error_and_artifacts_is_loaded_by_marshmallow():
    event = base_event("step_end")
    event.update(
        status="error",
        error={"type": "ValueError", "message": "boom"},
        artifacts=[{"name": "sample", "payload": [1, 2]}],
    )
    with pytest.raises(NotPlain):
        LOADERS["step_end"].load(event)
    loaded = load_event(event)
    assert loaded["error"]["type"] == "ValueError" and loaded["artifacts"][0]["name"] == "sample"


def test_a_schema_with_a_hook_the_loader_does_not_honour_turns_it_off():
    from marshmallow import fields, pre_load

    class Lowered(EVENT_SCHEMAS["run_finish"].__class__):
        @pre_load
        def lower(self, data, **kwargs):
            return {**data, "status": data["status"].lower()}

    class Renamed(EVENT_SCHEMAS["run_finish"].__class__):
        status = fields.String(required=True, data_key="state")

    event = base_event("run_finish")
    assert LOADERS["run_finish"].enabled and LOADERS["run_finish"].load(event)
    for schema in (Lowered(), Renamed()):
        loader = PlainLoader(schema)
        assert not loader.enabled
        with pytest.raises(NotPlain):
            loader.load(event)
