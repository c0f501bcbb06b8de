"""explain and diff are rules over the API's JSON: deterministic, and each finding justified."""

import math
import random

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


def recent_step(i, seq, name, step_type, metrics, rejections=None, duration_ms=10.0):
    """Step `seq` of recent run `i`, as the baseline query returns it."""
    return {
        "run_id": f"b{i}",
        "step_id": f"b{i}-{seq}",
        "parent_step_id": None,
        "name": name,
        "step_type": step_type,
        "status": "ok",
        "metrics": metrics,
        "rejections": rejections or {},
        "contract_violations": [],
        "duration_ms": duration_ms,
    }


def baseline_steps(n=200, seed=1):
    """`n` recent runs of a pipeline: search, a filter that drops about a quarter, and a select."""
    rng = random.Random(seed)
    steps = []
    for i in range(n):
        cin = rng.randint(900, 1100)
        cout = int(cin * rng.uniform(0.65, 0.85))
        for seq, name, step_type, metrics in (
            (0, "search", "search", {"candidates_in": 1, "candidates_out": cin}),
            (
                1,
                "compat_filter",
                "filter",
                {"candidates_in": cin, "candidates_out": cout, "drop_ratio": 1 - cout / cin},
            ),
            (2, "select", "select", {"candidates_in": cout, "candidates_out": 1, "drop_ratio": 1 - 1 / cout}),
        ):
            rejections = {"category_not_compatible": cin - cout} if seq == 1 and i % 5 == 0 else {}
            steps.append(recent_step(i, seq, name, step_type, metrics, rejections, rng.uniform(8, 12)))
    return steps


BASELINE = baseline_steps()


def test_an_abnormal_drop_ratio_is_the_verdict_with_its_numbers():
    result = explain(
        run(
            step(0, "search", "search", metrics={"candidates_in": 1, "candidates_out": 1000}),
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
    assert (top["kind"], top["step"], top["role"]) == ("outlier", "compat_filter", "cause")
    assert "96.0%" in top["message"] and "none of 200 earlier steps" in top["message"]
    assert result["symptom"]["kind"] == "worse_end" and result["symptom"]["step"] == "compat_filter"
    assert top["why"] == "kept generic accessories"
    assert result["cause"]["step"] == "compat_filter" and result["cause"]["evidence"]["robust_z"] > 5
    assert "compat_filter" in result["verdict"]


def test_a_normal_run_has_no_verdict():
    result = explain(
        run(
            step(0, "search", "search", metrics={"candidates_in": 1, "candidates_out": 1010}),
            step(1, "compat_filter", metrics={"candidates_in": 1010, "candidates_out": 760, "drop_ratio": 250 / 1010}),
        ),
        BASELINE,
    )
    assert result["findings"] == [] and result["cause"] is None
    assert result["symptom"] is None and result["verdict"].startswith("Nothing went wrong")


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
    assert result["cause"]["kind"] == "error" and "IndexError" in result["cause"]["message"]
    assert any(f["kind"] == "outlier" and f["step"] == "compat_filter" for f in result["findings"])
    assert any(f["kind"] == "violation" and f["step"] == "rank" for f in result["findings"])


def test_an_empty_output_and_dropped_evidence_are_findings():
    dropped = {"name": "rejected_sample", "status": "dropped", "drop_reason": "load_shed"}
    result = explain(
        run(step(1, "compat_filter", metrics={"candidates_in": 1000, "candidates_out": 0}, artifacts=[dropped])),
        BASELINE,
    )
    kinds = [f["kind"] for f in result["findings"]]
    assert kinds[0] == "empty" and "dropped_evidence" in kinds
    assert "load_shed" in next(f for f in result["findings"] if f["kind"] == "dropped_evidence")["message"]


def test_a_small_baseline_is_not_trusted():
    small = [s for s in BASELINE if s["run_id"] in {f"b{i}" for i in range(10)}]
    result = explain(
        run(step(1, "compat_filter", metrics={"candidates_in": 1000, "candidates_out": 40, "drop_ratio": 0.96})), small
    )
    assert result["findings"] == []


def test_a_starved_step_is_an_effect_and_the_step_that_starved_it_is_the_cause():
    result = explain(
        run(
            step(0, "search", "search", metrics={"candidates_in": 1, "candidates_out": 3}),
            step(1, "compat_filter", metrics={"candidates_in": 3, "candidates_out": 0}),
            step(2, "select", "select", metrics={"candidates_in": 0, "candidates_out": 0}),
        ),
        BASELINE,
    )
    assert result["cause"]["step"] == "search"
    roles = {(f["step"], f["role"]) for f in result["findings"]}
    assert ("compat_filter", "effect") in roles and not any(r == "cause" and s != "search" for s, r in roles)


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
    )
    top = next(f for f in result["findings"] if f["evidence"].get("feature") == "drop_ratio")
    assert "93% of them for 'category_not_compatible'" in top["message"]
    reasons = [f for f in result["findings"] if f["evidence"].get("feature") == "reason:category_not_compatible"]
    assert reasons and reasons[0]["evidence"]["value"] == 0.93


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


def test_diff_shows_the_runs_tags_metadata_inputs_and_rejections_per_reason():
    a = run(
        step(0, "classify", "llm", input={"text": "Hello"}),
        step(1, "skills", rejections={"no_skill": 3}),
        run_id="a",
    )
    b = run(
        step(0, "classify", "llm", input={"text": "Olá"}),
        step(1, "skills", rejections={"no_skill": 3, "language_mismatch": 34}),
        run_id="b",
    )
    a["tags"], b["tags"] = {"language": "en", "tier": "gold"}, {"language": "pt-BR", "tier": "gold"}
    a["metadata"], b["metadata"] = {"model_version": 4}, {}
    result = diff_runs(a, b)
    assert result["run"] == {"tags.language": ["en", "pt-BR"], "metadata.model_version": [4, None]}
    by_name = {s["name"]: s["changes"] for s in result["steps"]}
    assert by_name["classify"] == {"input": [{"text": "Hello"}, {"text": "Olá"}]}
    # A reason one step did not give removed 0 candidates there.
    assert by_name["skills"] == {"rejections.language_mismatch": [0, 34]}


def llm_baseline(n=200, seed=2):
    """Recent runs of an llm step: 'm-large' in 85% of them, 'm-small' in the rest, both
    returning 2 to 4 keywords."""
    rng = random.Random(seed)
    return [
        recent_step(
            i,
            0,
            "make_query",
            "llm",
            {
                "candidates_in": 1,
                "candidates_out": rng.choice((2, 3, 3, 3, 4)),
                "model": "m-small" if i % 7 == 0 else "m-large",
            },
        )
        for i in range(n)
    ]


def test_a_minority_model_is_the_cause_only_when_its_own_output_moved_with_it():
    baseline = llm_baseline()
    # The keywords' filter of every earlier run kept some.
    for i in range(200):
        baseline.append(recent_step(i, 1, "keep_terms", "filter", {"candidates_in": 3, "candidates_out": 2}))

    def explained(keywords):
        metrics = {"candidates_in": 1, "candidates_out": keywords, "model": "m-small"}
        kept = {"candidates_in": keywords, "candidates_out": 0 if keywords == 1 else 2}
        return explain(
            run(step(0, "make_query", "llm", metrics=metrics), step(1, "keep_terms", metrics=kept)), baseline
        )

    # A minority model with a usual output is normal variation: reported, never the cause.
    alone = explained(3)
    assert alone["cause"] is None
    assert [(f["kind"], f["role"]) for f in alone["findings"]] == [("changed", "unusual")]
    # The same model with a ninth of the usual keywords: the model change is the cause.
    fell_back = explained(1)
    assert fell_back["cause"]["step"] == "make_query" and fell_back["cause"]["kind"] == "changed"
    assert fell_back["cause"]["evidence"]["value"] == "m-small"


def two_sources_baseline(n=200, seed=3):
    """Recent runs where two searches whose results spread widely (by factors) feed one filter."""
    rng = random.Random(seed)
    steps = []
    for i in range(n):
        a, b = (max(1, int(rng.lognormvariate(math.log(400), 0.8))) for _ in range(2))
        kept = int((a + b) * rng.uniform(0.6, 0.8))
        for seq, name, step_type, metrics in (
            (0, "search_a", "search", {"candidates_in": 3, "candidates_out": a}),
            (1, "search_b", "search", {"candidates_in": 3, "candidates_out": b}),
            (2, "filter", "filter", {"candidates_in": a + b, "candidates_out": kept, "drop_ratio": 1 - kept / (a + b)}),
        ):
            steps.append(recent_step(i, seq, name, step_type, metrics, duration_ms=rng.uniform(8, 12)))
    return steps


def test_a_source_that_returned_a_hundredth_of_its_usual_is_the_cause_though_nothing_after_it_starved():
    baseline = two_sources_baseline()
    for s in baseline:
        if s["name"] == "search_b":
            baseline.append(recent_step(s["run_id"][1:], 3, "pick", "select", {"candidates_in": 5, "score": 0.9}))
    result = explain(
        run(
            step(0, "search_a", "search", metrics={"candidates_in": 3, "candidates_out": 450}),
            step(1, "search_b", "search", metrics={"candidates_in": 3, "candidates_out": 3}),
            step(2, "filter", metrics={"candidates_in": 453, "candidates_out": 320, "drop_ratio": 1 - 320 / 453}),
            step(3, "pick", "select", metrics={"candidates_in": 5, "score": 0.3}),
        ),
        baseline,
    )
    assert result["symptom"]["step"] == "pick", result
    assert result["cause"] is not None and result["cause"]["step"] == "search_b", result["findings"]


def test_a_bug_shared_by_three_recent_runs_in_ten_does_not_hide_in_the_baseline():
    rng = random.Random(4)
    baseline = []
    for i in range(200):
        cin = rng.randint(900, 1100)
        cout = int(cin * (rng.uniform(0.02, 0.05) if i % 10 in (0, 1, 2) else rng.uniform(0.7, 0.8)))
        metrics = {"candidates_in": cin, "candidates_out": cout, "drop_ratio": 1 - cout / cin}
        baseline.append(recent_step(i, 0, "compat_filter", "filter", metrics))
    bad = explain(
        run(step(0, "compat_filter", metrics={"candidates_in": 1000, "candidates_out": 30, "drop_ratio": 0.97})),
        baseline,
    )
    assert bad["cause"] is not None and bad["cause"]["step"] == "compat_filter"
    good = explain(
        run(step(0, "compat_filter", metrics={"candidates_in": 1000, "candidates_out": 750, "drop_ratio": 0.25})),
        baseline,
    )
    assert good["cause"] is None


def test_a_reason_that_is_often_absent_is_held_to_the_shares_it_has_when_present():
    rng = random.Random(5)
    baseline = []
    for i in range(200):
        cin = rng.randint(900, 1100)
        stock = int(cin * rng.uniform(0.25, 0.35))
        price = 0 if rng.random() < 0.55 else int(cin * rng.uniform(0.1, 0.4))
        cout = cin - stock - price
        rejections = {"stock": stock, **({"price": price} if price else {})}
        metrics = {"candidates_in": cin, "candidates_out": cout, "drop_ratio": 1 - cout / cin}
        baseline.append(recent_step(i, 0, "f", "filter", metrics, rejections))
    # A price share of 0.3 is within what the step does when it rejects for price (0.1 to 0.4).
    usual = step(
        0,
        "f",
        metrics={"candidates_in": 1000, "candidates_out": 400, "drop_ratio": 0.6},
        rejections={"stock": 300, "price": 300},
    )
    assert explain(run(usual), baseline)["cause"] is None


def test_an_output_that_follows_its_input_does_not_make_a_minority_value_the_cause():
    rng = random.Random(7)
    baseline = []
    for i in range(200):
        found = int(rng.uniform(80, 120))
        kept = int(found * rng.uniform(0.45, 0.55))
        mode = "strict" if i % 6 == 0 else "loose"
        baseline.append(recent_step(i, 0, "search", "search", {"candidates_in": 3, "candidates_out": found}))
        baseline.append(
            recent_step(
                i,
                1,
                "f",
                "filter",
                {"candidates_in": found, "candidates_out": kept, "drop_ratio": 1 - kept / found, "mode": mode},
            )
        )
    # The search returned three times its usual; the filter kept its usual half of that.
    result = explain(
        run(
            step(0, "search", "search", metrics={"candidates_in": 3, "candidates_out": 300}),
            step(1, "f", metrics={"candidates_in": 300, "candidates_out": 150, "drop_ratio": 0.5, "mode": "strict"}),
        ),
        baseline,
    )
    assert result["cause"] is None or result["cause"]["step"] == "search", result["cause"]
