"""The shared vocabulary lives once, in the standard-library SDK, and the server uses it."""

import subprocess
import sys

from xray_sdk.contract import vocabulary
from xray_sdk.contract.limits import DEFAULT_LIMITS
from xray_server.schemas import events as event_schemas


def test_the_sdk_imports_nothing_outside_the_standard_library():
    code = (
        "import sys, xray_sdk, xray_sdk.contract.metrics, xray_sdk.contract.bounds;"
        "third = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'flask','psycopg','psycopg_pool','marshmallow','minio','werkzeug','apispec','gunicorn'});"
        "print(','.join(third))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_six_step_types_are_the_contracts():
    assert set(vocabulary.STEP_TYPES) == {"llm", "search", "filter", "rank", "select", "custom"}


def test_required_metrics_follow_the_contract():
    assert vocabulary.REQUIRED_METRICS == {
        "filter": ("candidates_in", "candidates_out", "drop_ratio"),
        "rank": ("candidates_in", "candidates_out"),
        "llm": ("model",),
    }


def test_capture_levels():
    assert vocabulary.CAPTURE_LEVELS == ("summary", "sample", "full")


def test_server_validation_uses_the_sdk_vocabulary_and_limits():
    step_type = event_schemas.StepStartSchema().fields["step_type"]
    assert tuple(step_type.validate.choices) == vocabulary.STEP_TYPES
    batch = event_schemas.BatchSchema().fields["events"]
    assert batch.validate.max == DEFAULT_LIMITS.max_events_per_batch
