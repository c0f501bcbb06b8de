"""The rules of explain that real data asked for, on plain values (no database): a value normal runs
share is no finding, a legitimate tail is not a cluster apart, a run without a symptom has no
cause, an empty filter given nothing that could pass is an effect, a rare reason says why."""

import random

from tests.test_explain_diff import recent_step, run, step
from xray_server.analysis.baseline import core_edge, gap_needed, gap_share, tail_share
from xray_server.analysis.explain import explain


def test_the_tail_share_counts_ties_as_at_least_as_extreme():
    points = sorted([0.0] * 90 + [0.5] * 10)
    assert tail_share(points, 0.5, 0.0) == 0.1
    assert tail_share(points, 0.0, 0.0) == 1.0


def test_a_filled_tail_is_not_apart_and_a_cluster_is():
    filled = sorted([5.0] * 80 + [3.0 + 0.1 * i for i in range(20)])
    edge = core_edge(filled, 3.0, 5.0)
    assert gap_share(filled, 3.0, edge) < gap_needed(filled, 3.0, edge)
    cluster = sorted([5.0 - 0.01 * i for i in range(80)] + [1.0 + 0.01 * i for i in range(20)])
    edge = core_edge(cluster, 1.0, cluster[50])
    assert gap_share(cluster, 1.0, edge) > gap_needed(cluster, 1.0, edge)
    # Three values in a sparse tail leave wide gaps by chance: they are not enough to say "apart".
    sparse = sorted([5.0] * 97 + [3.5, 4.0, 4.5])
    assert gap_needed(sparse, 3.0, core_edge(sparse, 3.0, 5.0)) > 0.6


def pick_baseline(n=200, seed=11, two_share=0.1, hard_share=0.15, bug_share=0.0, limit=None):
    """Earlier runs of search -> score (rank) -> pick (select): the pick chooses from 2 in
    `two_share` of runs; hard inputs score 3.0 to 4.9 (a filled tail); a bug, if any, scores 0.5.
    With `limit`, the search records it (it returns 40 to 60)."""
    rng = random.Random(seed)
    capped = {} if limit is None else {"limit": limit}
    steps = []
    for i in range(n):
        given = 2 if rng.random() < two_share else 1
        draw = rng.random()
        score = 0.5 if draw < bug_share else rng.uniform(3.0, 4.9) if draw < bug_share + hard_share else 5.0
        steps += [
            recent_step(i, 0, "search", "search", {"candidates_in": 1, "candidates_out": rng.randint(40, 60)} | capped),
            recent_step(i, 1, "score", "rank", {"candidates_in": 50, "candidates_out": given, "score_max": score}),
            recent_step(i, 2, "pick", "select", {"candidates_in": given, "candidates_out": 1}),
        ]
    return steps


def pick_run(given=1, score=5.0, search_out=50, limit=None):
    capped = {} if limit is None else {"limit": limit}
    return run(
        step(0, "search", "search", metrics={"candidates_in": 1, "candidates_out": search_out} | capped),
        step(1, "score", "rank", metrics={"candidates_in": 50, "candidates_out": given, "score_max": score}),
        step(2, "pick", "select", metrics={"candidates_in": given, "candidates_out": 1, "drop_ratio": 1 - 1 / given}),
    )


def test_a_select_that_chose_from_two_as_one_run_in_ten_does_is_no_finding():
    result = explain(pick_run(given=2), pick_baseline())
    assert result["symptom"] is None and result["cause"] is None and result["findings"] == []


def test_a_hard_but_right_score_in_a_filled_tail_is_no_cause():
    result = explain(pick_run(score=3.0), pick_baseline())
    assert result["cause"] is None, result["verdict"]


def test_a_score_in_a_cluster_apart_with_a_new_scorer_names_the_rank():
    baseline = pick_baseline(bug_share=0.2)
    for s in baseline:
        if s["name"] == "score":
            s["metrics"]["scorer"] = "next" if s["metrics"]["score_max"] == 0.5 else "main"
    bad = pick_run(score=0.5)
    bad["steps"][1]["metrics"]["scorer"] = "next"
    result = explain(bad, baseline)
    assert result["symptom"]["kind"] == "worse_end"
    assert result["cause"]["step"] == "score", result["verdict"]


def test_a_score_that_fell_behind_a_truncated_search_names_the_search_when_truncation_led_there_before():
    # The bug truncates: the earlier runs that scored 0.5 are the ones whose search hit its limit.
    baseline = pick_baseline(bug_share=0.2, limit=60)
    runs = {}
    for s in baseline:
        runs.setdefault(s["run_id"], {})[s["name"]] = s
    for earlier in runs.values():
        if earlier["score"]["metrics"]["score_max"] == 0.5:
            earlier["search"]["metrics"]["candidates_out"] = 60
    bad = pick_run(score=0.5, search_out=60, limit=60)
    result = explain(bad, baseline)
    assert result["cause"]["step"] == "search" and result["cause"]["kind"] == "recall", result["verdict"]
    assert "limit of 60" in result["cause"]["message"], result["cause"]["message"]
    # Behind a search that returned less than its limit, nothing says the best was there to find.
    bad["steps"][0]["metrics"]["candidates_out"] = 45
    assert explain(bad, baseline)["cause"] is None


def test_a_truncated_search_is_no_cause_where_truncation_never_led_to_a_bad_end():
    # An entity with no match is truncated as often as any other: the cap is not what went wrong.
    baseline = pick_baseline(bug_share=0.2, limit=60)
    bad = pick_run(score=0.5, search_out=60, limit=60)
    result = explain(bad, baseline)
    assert result["symptom"] is not None and result["cause"] is None, result["verdict"]


def test_a_truncated_search_before_an_end_no_uncut_run_reached_is_named():
    # No earlier run whose search returned less than its limit scored near 0.5: the cap is the one trace.
    baseline = pick_baseline(bug_share=0.0, limit=60)
    bad = pick_run(score=0.5, search_out=60, limit=60)
    result = explain(bad, baseline)
    assert result["cause"]["step"] == "search", result["verdict"]
    assert "0% of the" in result["cause"]["message"] and "returned less than its limit" in result["cause"]["message"]


def test_a_search_nearly_always_truncated_has_too_few_uncut_runs_to_blame_its_cap():
    # 195 of 200 earlier searches hit their limit: five uncut runs cannot say an uncut one never ends so.
    baseline = pick_baseline(bug_share=0.0, limit=60)
    for i, s in enumerate(x for x in baseline if x["name"] == "search"):
        s["metrics"]["candidates_out"] = 60 if i % 40 else 45
    bad = pick_run(score=0.5, search_out=60, limit=60)
    result = explain(bad, baseline)
    assert result["symptom"] is not None and result["cause"] is None, result["verdict"]


def segment_baseline(n=200, seed=13, small_share=0.08, small_scores_low=True):
    """Earlier runs of ask (llm) -> score (rank) -> pick (select): the llm runs a small model in
    `small_share` of runs; hard inputs fill the score's tail from 0.3 to 0.9; the small model's
    runs score 0.05 to 0.2 when `small_scores_low`, else like the others."""
    rng = random.Random(seed)
    steps = []
    for i in range(n):
        small = rng.random() < small_share
        score = 0.95 if rng.random() > 0.2 else rng.uniform(0.3, 0.9)
        if small and small_scores_low:
            score = rng.uniform(0.05, 0.2)
        elif rng.random() < 0.04:
            score = rng.uniform(0.05, 0.3)  # a few hard inputs as low as the small model's: a filled tail
        steps += [
            recent_step(
                i,
                0,
                "ask",
                "llm",
                {"candidates_in": 1, "candidates_out": 3, "model": "m-small" if small else "m-large"},
            ),
            recent_step(i, 1, "score", "rank", {"candidates_in": 30, "candidates_out": 5, "score_max": score}),
            recent_step(i, 2, "pick", "select", {"candidates_in": 5, "candidates_out": 1}),
        ]
    return steps


def segment_run(model, score):
    return run(
        step(0, "ask", "llm", metrics={"candidates_in": 1, "candidates_out": 3, "model": model}),
        step(1, "score", "rank", metrics={"candidates_in": 30, "candidates_out": 5, "score_max": score}),
        step(2, "pick", "select", metrics={"candidates_in": 5, "candidates_out": 1, "drop_ratio": 0.8}),
    )


def test_a_minority_model_that_earlier_runs_tie_to_a_low_end_is_the_cause():
    result = explain(segment_run("m-small", 0.1), segment_baseline())
    assert result["symptom"]["kind"] == "worse_end" and result["cause"]["step"] == "ask", result["verdict"]
    assert "model='m-small'" in result["cause"]["message"], result["cause"]["message"]
    # The same low end with the usual model: nothing ties it to a setting, and hard inputs score so low too.
    assert explain(segment_run("m-large", 0.1), segment_baseline())["cause"] is None
    # The small model with a usual score: no symptom.
    assert explain(segment_run("m-small", 0.95), segment_baseline())["cause"] is None


def test_the_lowest_run_of_a_minority_models_low_cluster_is_tied_to_it_too():
    # 0.04 is below every earlier run, the small model's included: "at least this low" would find
    # none of them, though each of them ended far down its tail as this one did.
    result = explain(segment_run("m-small", 0.04), segment_baseline())
    assert result["symptom"]["kind"] == "worse_end" and result["cause"]["step"] == "ask", result["verdict"]
    assert explain(segment_run("m-large", 0.04), segment_baseline())["cause"] is None


def test_a_minority_model_whose_runs_end_as_the_others_do_is_no_cause():
    result = explain(segment_run("m-small", 0.1), segment_baseline(small_scores_low=False))
    assert result["cause"] is None, result["verdict"]


def filter_baseline(n=200, seed=12):
    """Earlier runs of score (rank) -> keep (filter): 12% of inputs have no match (everything scores
    low and is rejected for `below_threshold`); the rest keep one."""
    rng = random.Random(seed)
    steps = []
    for i in range(n):
        no_match = rng.random() < 0.12
        score = rng.uniform(0.2, 0.45) if no_match else rng.uniform(0.85, 0.99)
        kept = 0 if no_match else 1
        steps += [
            recent_step(i, 0, "score", "rank", {"candidates_in": 30, "candidates_out": 10, "score_max": score}),
            recent_step(
                i,
                1,
                "keep",
                "filter",
                {"candidates_in": 10, "candidates_out": kept, "drop_ratio": 1 - kept / 10},
                {"below_threshold": 10 - kept},
            ),
        ]
    return steps


def keep_run(score, rejections):
    kept = 10 - sum(rejections.values())
    return run(
        step(0, "score", "rank", metrics={"candidates_in": 30, "candidates_out": 10, "score_max": score}),
        step(
            1,
            "keep",
            metrics={"candidates_in": 10, "candidates_out": kept, "drop_ratio": 1 - kept / 10},
            rejections=rejections,
        ),
    )


def test_an_empty_filter_given_nothing_that_could_pass_is_no_cause():
    result = explain(keep_run(0.3, {"below_threshold": 10}), filter_baseline())
    assert result["symptom"]["kind"] == "empty"
    assert result["cause"] is None, result["verdict"]


def test_a_reason_the_step_never_gives_that_emptied_it_is_the_cause_and_says_why():
    result = explain(keep_run(0.95, {"below_threshold": 9, "dob_conflict": 1}), filter_baseline())
    assert result["cause"]["step"] == "keep", result["verdict"]
    assert "dob_conflict" in result["cause"]["message"]


def test_evidence_dropped_by_the_capture_policy_is_not_a_finding():
    unkept = {"name": "rejected_sample", "status": "dropped", "drop_reason": "capture_policy"}
    lost = {"name": "kept_sample", "status": "dropped", "drop_reason": "load_shed"}
    r = keep_run(0.95, {"below_threshold": 9})
    r["steps"][1]["artifacts"] = [unkept, lost]
    kinds = [(f["kind"], f["evidence"].get("artifact")) for f in explain(r, filter_baseline())["findings"]]
    assert kinds == [("dropped_evidence", "kept_sample")]
