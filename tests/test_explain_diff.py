"""explain and diff are rules over the API's JSON: deterministic, and each finding justified."""

from xray_server.analysis.diff import diff_runs
from xray_server.analysis.explain import explain


def step(seq, name, step_type="filter", status="ok", metrics=None, why=None, **extra):
    base = {
        "seq": seq,
        "name": name,
        "step_type": step_type,
        "status": status,
        "metrics": metrics or {},
        "why": why,
        "error": None,
        "contract_violations": [],
        "artifacts": [],
        "duration_ms": 10.0,
        "output": None,
        "step_id": f"s{seq}",
    }
    base.update(extra)
    return base


def run(*steps, run_id="r1", outcome=None):
    return {
        "run_id": run_id,
        "pipeline": "p",
        "entity": "e",
        "status": "ok",
        "outcome": outcome,
        "error": None,
        "tags": {},
        "steps": list(steps),
    }


BASELINE = {
    "groups": [
        {
            "name": "compat_filter",
            "step_type": "filter",
            "steps": 200,
            "drop_ratio": {"p10": 0.1, "p50": 0.25, "p90": 0.4, "p99": 0.5},
            "candidates_out": {"p10": 300, "p50": 700, "p90": 900, "p99": 1000},
            "duration_ms": {"p10": 5, "p50": 10, "p90": 20, "p99": 30},
        }
    ]
}


def test_an_abnormal_drop_ratio_is_the_verdict_with_its_numbers():
    result = explain(
        run(
            step(0, "search", "search"),
            step(
                1,
                "compat_filter",
                metrics={"candidates_in": 1000, "candidates_out": 40, "drop_ratio": 0.96},
                why="kept generic accessories",
            ),
        ),
        BASELINE,
    )
    top = result["findings"][0]
    assert (top["kind"], top["step"]) == ("outlier", "compat_filter")
    assert "96.0%" in top["message"] and "25.0%" in top["message"] and "200 recent steps" in top["message"]
    assert top["why"] == "kept generic accessories"
    assert "compat_filter" in result["verdict"]


def test_a_normal_run_has_no_verdict():
    result = explain(
        run(step(1, "compat_filter", metrics={"candidates_in": 1000, "candidates_out": 700, "drop_ratio": 0.3})),
        BASELINE,
    )
    assert result["findings"] == []
    assert result["verdict"].startswith("No step stands out")


def test_errors_come_before_outliers_and_violations_are_reported():
    result = explain(
        run(
            step(0, "compat_filter", metrics={"candidates_in": 1000, "candidates_out": 10, "drop_ratio": 0.99}),
            step(1, "rank", "rank", contract_violations=["missing_metric:candidates_in"]),
            step(
                2,
                "select",
                "select",
                status="error",
                error={"type": "IndexError", "message": "list index out of range"},
            ),
        ),
        BASELINE,
    )
    assert [f["kind"] for f in result["findings"]][:2] == ["error", "outlier"]
    assert "IndexError" in result["findings"][0]["message"]
    assert any(f["kind"] == "violation" and f["step"] == "rank" for f in result["findings"])


def test_an_empty_output_and_dropped_evidence_are_findings():
    dropped = {"name": "rejected_sample", "status": "dropped", "drop_reason": "load_shed"}
    result = explain(
        run(step(0, "other_filter", metrics={"candidates_in": 50, "candidates_out": 0}, artifacts=[dropped])),
        {"groups": []},
    )
    kinds = [f["kind"] for f in result["findings"]]
    assert kinds == ["empty", "dropped_evidence"]
    assert "load_shed" in result["findings"][1]["message"]


def test_a_small_baseline_is_not_trusted():
    small = {"groups": [dict(BASELINE["groups"][0], steps=3)]}
    result = explain(
        run(step(1, "compat_filter", metrics={"candidates_in": 1000, "candidates_out": 40, "drop_ratio": 0.96})), small
    )
    assert result["findings"] == []


def test_diff_lines_up_steps_and_lists_what_changed():
    a = run(
        step(0, "search", "search", metrics={"results": 900}),
        step(1, "compat_filter", metrics={"drop_ratio": 0.2}, why="same category"),
        step(2, "select", "select"),
        run_id="a",
        outcome={"x": 1},
    )
    b = run(
        step(0, "search", "search", metrics={"results": 900}),
        step(1, "compat_filter", metrics={"drop_ratio": 0.95}, why="generic accessories"),
        step(2, "audit", "custom"),
        run_id="b",
        outcome={"x": 2},
    )
    result = diff_runs(a, b)
    by_name = {s["name"]: s for s in result["steps"]}
    assert by_name["search"]["changes"] == {}
    assert by_name["compat_filter"]["changes"] == {
        "metrics.drop_ratio": [0.2, 0.95],
        "why": ["same category", "generic accessories"],
    }
    assert by_name["select"]["only_in"] == "a" and by_name["audit"]["only_in"] == "b"
    assert result["outcome"] == [{"x": 1}, {"x": 2}]


def test_diff_of_a_run_with_itself_is_empty():
    a = run(step(0, "search", "search", metrics={"results": 1}))
    result = diff_runs(a, a)
    assert all(s["changes"] == {} for s in result["steps"]) and result["outcome"] is None


def test_the_dominant_rejection_reason_is_part_of_the_evidence():
    result = explain(
        run(
            step(
                1,
                "compat_filter",
                metrics={"candidates_in": 1000, "candidates_out": 40, "drop_ratio": 0.96},
                rejections={"category_not_compatible": 930, "price_out_of_band": 30},
            )
        ),
        BASELINE,
        {"compat_filter": {"reasons": [{"reason": "category_not_compatible", "median_share": 0.04}]}},
    )
    top = result["findings"][0]
    assert "93% of its candidates for 'category_not_compatible', against a usual 4%" in top["message"]
    assert top["evidence"]["reason"] == "category_not_compatible"
