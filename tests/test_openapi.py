"""The OpenAPI document covers every endpoint and matches what the server accepts."""

import re
import uuid

from tests.support.events import competitor_run
from tests.test_api_runs import post_json
from xray_sdk.contract.vocabulary import STEP_TYPES


def spec(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_every_route_is_documented(app, client):
    documented = set(spec(client)["paths"])
    routes = {re.sub(r"<(\w+)>", r"{\1}", rule.rule) for rule in app.url_map.iter_rules() if rule.endpoint != "static"}
    assert routes == documented


def test_query_parameters_match_the_validating_schema(client):
    params = {p["name"] for p in spec(client)["paths"]["/api/v1/steps"]["get"]["parameters"]}
    assert params == {
        "step_type",
        "pipeline",
        "name",
        "status",
        "min_drop_ratio",
        "max_drop_ratio",
        "violations",
        "violation",
        "since",
        "until",
        "limit",
        "cursor",
        "reason",
        "min_reason_share",
        "tag",
        "outcome",
        "metadata",
        "run_label",
        "total",
    }
    for name in params - {"cursor", "since", "until", "min_reason_share"}:
        # each documented parameter is accepted (not refused as unknown)
        value = {
            "step_type": "filter",
            "status": "ok",
            "violations": "true",
            "limit": "5",
            "min_drop_ratio": "0.1",
            "max_drop_ratio": "0.9",
            "tag": "k:v",
            "total": "true",
            "outcome": "k:v",
            "metadata": "k=v",
        }.get(name, "x")
        assert client.get(f"/api/v1/steps?{name}={value}").status_code == 200, name


def test_step_types_and_required_fields_come_from_the_schemas(client):
    schemas = spec(client)["components"]["schemas"]
    assert tuple(schemas["StepEnd"]["properties"]["step_type"]["enum"]) == STEP_TYPES
    assert set(schemas["StepEnd"]["required"]) == {
        "event_id",
        "type",
        "ts",
        "step_id",
        "seq",
        "name",
        "step_type",
        "status",
    }
    assert set(schemas["RunCreate"]["required"]) == {"pipeline", "entity"}


def test_documented_event_properties_are_exactly_those_accepted(client):
    schemas = spec(client)["components"]["schemas"]
    event = competitor_run()[1]  # a step_end with every common field
    extra = {name: None for name in schemas["StepEnd"]["properties"] if name not in event}
    extra.update(started_at=None, output=None, why=None, error=None, parent_step_id=None, metrics={}, artifacts=[])
    response = post_json(client, f"/api/v1/runs/{uuid.uuid4()}/events", {"events": [{**event, **extra}]})
    assert response.status_code == 200, response.get_json()
    undocumented = post_json(
        client, f"/api/v1/runs/{uuid.uuid4()}/events", {"events": [{**competitor_run()[1], "colour": "red"}]}
    )
    assert undocumented.get_json()["rejected"][0]["errors"] == {"colour": ["Unknown field."]}
