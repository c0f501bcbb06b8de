"""xray_sdk.contract.evaluate_metrics: the one rule for step metrics."""

import math

import pytest

from xray_sdk.contract.metrics import derive_drop_ratio, evaluate_metrics


def test_filter_drop_ratio_is_derived_from_the_counts():
    verdict = evaluate_metrics("filter", {"candidates_in": 200, "candidates_out": 10})
    assert verdict.errors == {}
    assert verdict.violations == []
    assert verdict.metrics["drop_ratio"] == pytest.approx(0.95)


def test_consistent_rounded_drop_ratio_is_kept():
    verdict = evaluate_metrics("filter", {"candidates_in": 3, "candidates_out": 1, "drop_ratio": 0.667})
    assert verdict.errors == {}
    assert verdict.metrics["drop_ratio"] == 0.667


def test_inconsistent_drop_ratio_is_an_error_that_names_the_counts():
    verdict = evaluate_metrics("filter", {"candidates_in": 100, "candidates_out": 10, "drop_ratio": 0.5})
    assert "drop_ratio" in verdict.errors
    assert "candidates_in=100" in verdict.errors["drop_ratio"]


def test_more_out_than_in_is_an_error():
    verdict = evaluate_metrics("rank", {"candidates_in": 5, "candidates_out": 6})
    assert "candidates_out" in verdict.errors


def test_missing_required_metrics_are_violations_not_errors():
    verdict = evaluate_metrics("filter", {"candidates_in": 5})
    assert verdict.errors == {}
    assert verdict.violations == ["missing_metric:candidates_out", "missing_metric:drop_ratio"]


def test_llm_needs_a_model():
    assert evaluate_metrics("llm", {}).violations == ["missing_metric:model"]
    assert evaluate_metrics("llm", {"model": "m", "temperature": 0.3}).violations == []


def test_types_without_required_metrics_have_no_violations():
    for step_type in ("search", "select", "custom"):
        assert evaluate_metrics(step_type, {}).violations == []


@pytest.mark.parametrize(
    "metrics, field",
    [
        ({"candidates_in": -1}, "candidates_in"),
        ({"candidates_in": 1.5}, "candidates_in"),
        ({"candidates_in": True}, "candidates_in"),
        ({"candidates_in": "10"}, "candidates_in"),
        ({"drop_ratio": 1.2}, "drop_ratio"),
        ({"drop_ratio": math.nan}, "drop_ratio"),
        ({"model": ""}, "model"),
        ({"model": 3}, "model"),
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": math.inf}, "temperature"),
        ({"custom": {"nested": 1}}, "custom"),
        ({"custom": math.nan}, "custom"),
        ({"bad key": 1}, "bad key"),
    ],
)
def test_unusable_values_are_errors_naming_the_metric(metrics, field):
    verdict = evaluate_metrics("filter", metrics)
    assert field in verdict.errors


def test_null_metrics_count_as_absent():
    verdict = evaluate_metrics("llm", {"model": None, "tokens": None})
    assert verdict.metrics == {}
    assert verdict.violations == ["missing_metric:model"]


def test_an_empty_step_has_no_drop_ratio():
    assert derive_drop_ratio(0, 0) is None
    verdict = evaluate_metrics("filter", {"candidates_in": 0, "candidates_out": 0})
    assert "drop_ratio" not in verdict.metrics and verdict.errors == {} and verdict.violations == []
    given = evaluate_metrics("filter", {"candidates_in": 0, "candidates_out": 0, "drop_ratio": 0.0})
    assert "drop_ratio" not in given.metrics and given.errors == {}


@pytest.mark.parametrize("step_type", ["search", "llm", "custom"])
def test_an_expanding_step_keeps_its_counts_and_has_no_drop_ratio(step_type):
    verdict = evaluate_metrics(step_type, {"candidates_in": 1, "candidates_out": 1000, "model": "m"})
    assert verdict.errors == {} and verdict.violations == []
    assert (verdict.metrics["candidates_in"], verdict.metrics["candidates_out"]) == (1, 1000)
    assert "drop_ratio" not in verdict.metrics
    flagged = evaluate_metrics(step_type, {"candidates_in": 10, "candidates_out": 5, "drop_ratio": 0.5, "model": "m"})
    assert "drop_ratio" not in flagged.metrics and flagged.violations == ["not_applicable:drop_ratio"]


@pytest.mark.parametrize("step_type", ["filter", "rank", "select"])
def test_a_reducing_step_still_may_not_output_more_than_it_received(step_type):
    assert "candidates_out" in evaluate_metrics(step_type, {"candidates_in": 5, "candidates_out": 6}).errors
    assert evaluate_metrics(step_type, {"candidates_in": 4, "candidates_out": 1}).metrics["drop_ratio"] == 0.75
