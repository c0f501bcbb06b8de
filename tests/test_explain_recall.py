"""Recall lost upstream, on plain values (no database): a search that found far worse matches than
hard inputs make it is named for the empty or low end after it; a search inside the tail that
hard inputs fill is not; a cap is named only when the runs it would name wrongly are few."""

import random

from tests.test_explain_diff import recent_step, run, step
from tests.test_explain_rules import pick_baseline, pick_run
from xray_server.analysis.baseline import gap_needed
from xray_server.analysis.explain import explain

PICK_THRESHOLD = 0.75


def resolve_baseline(n=200, seed=21, typo_share=0.12, lost_share=0.0):
    """Earlier runs of find (search) -> region (filter) -> score (rank) -> pick (select, with a
    threshold), a place resolver's shape: the search's best similarity is 100 for a name typed
    right, 65 to 99 for a typo (a filled tail), and 55 to 75 when, in `lost_share` of the runs,
    it lost the right entry; the rank's best follows the search's."""
    rng = random.Random(seed)
    steps = []
    for i in range(n):
        draw = rng.random()
        top = (
            rng.uniform(55, 75)
            if draw < lost_share
            else rng.uniform(65, 99)
            if draw < lost_share + typo_share
            else 100.0
        )
        kept = rng.randint(3, 25)
        best = round(top / 100 + rng.uniform(0.05, 0.12), 4)
        chosen = 1 if best >= PICK_THRESHOLD else 0
        steps += [
            recent_step(i, 0, "find", "search", {"candidates_in": 1, "candidates_out": 25, "score_top": round(top, 1)}),
            recent_step(
                i, 1, "region", "filter", {"candidates_in": 25, "candidates_out": kept}, {"region_mismatch": 25 - kept}
            ),
            recent_step(i, 2, "score", "rank", {"candidates_in": kept, "candidates_out": 5, "score_max": best}),
            recent_step(i, 3, "pick", "select", {"candidates_in": 5, "candidates_out": chosen}),
        ]
    return steps


def resolve_run(top, best, kept=12, chosen=0):
    """A run of the resolver whose search's best was `top` and whose rank's best was `best`; the pick
    chose `chosen` (none, as when the best fell below its threshold); a region filter that kept none
    leaves the rank and pick nothing."""
    steps = [
        step(0, "find", "search", metrics={"candidates_in": 1, "candidates_out": 25, "score_top": top}),
        step(1, "region", "filter", metrics={"candidates_in": 25, "candidates_out": kept}),
    ]
    steps[1]["rejections"] = {"region_mismatch": 25 - kept}
    if kept:
        steps.append(step(2, "score", "rank", metrics={"candidates_in": kept, "candidates_out": 5, "score_max": best}))
    steps.append(step(3, "pick", "select", metrics={"candidates_in": 5 if kept else 0, "candidates_out": chosen}))
    return run(*steps)


def test_a_point_on_a_tied_core_edge_needs_the_plain_gap_and_does_not_raise():
    # Most values tie at 100: a value of 100 is on the core's edge, with nothing between them.
    points = sorted([90.0] * 50 + [100.0] * 150)
    assert gap_needed(points, 100.0, 100.0) == 0.25


def test_a_search_in_a_filled_tail_is_no_finding_of_its_own():
    # The shape the rules below are for: 60 is below anything a typo reaches, yet not apart.
    result = explain(resolve_run(top=60.0, best=1.1, chosen=1), resolve_baseline())
    assert result["symptom"] is None and result["findings"] == [], result["verdict"]


def test_a_select_that_chose_none_after_a_search_that_found_far_worse_matches_names_the_search():
    result = explain(resolve_run(top=60.0, best=0.66), resolve_baseline())
    assert result["symptom"]["kind"] == "empty" and result["symptom"]["step"] == "pick"
    assert result["cause"]["step"] == "find" and result["cause"]["kind"] == "recall", result["verdict"]
    assert "found worse matches than usual (score_top=60" in result["cause"]["message"], result["cause"]["message"]
    roles = {(f["step"], f["role"]) for f in result["findings"]}
    assert ("pick", "cause") not in roles, roles


def test_an_empty_filter_after_a_search_that_found_far_worse_matches_names_the_search():
    result = explain(resolve_run(top=60.0, best=0.0, kept=0), resolve_baseline())
    assert result["symptom"]["kind"] == "empty" and result["symptom"]["step"] == "region"
    assert result["cause"]["step"] == "find", result["verdict"]


def test_a_search_inside_the_tail_that_typos_fill_is_not_named_for_an_empty_filter():
    # A typo puts one search in eight at 65 to 99: 90 is a hard input, and the filter's emptiness is its own.
    result = explain(resolve_run(top=90.0, best=0.0, kept=0), resolve_baseline())
    assert result["symptom"]["kind"] == "empty"
    assert result["cause"]["step"] == "region", result["verdict"]


def test_a_search_in_a_tail_its_own_bug_filled_is_named_when_the_rank_after_it_fell_far_too():
    # The bug's earlier runs fill the search's tail down to 55 (6% of runs): 65 alone is no longer
    # rare, but the rank's best fell below nearly anything the earlier runs reached, with the search's.
    baseline = resolve_baseline(lost_share=0.06)
    result = explain(resolve_run(top=65.0, best=0.6), baseline)
    assert result["cause"]["step"] == "find", result["verdict"]
    # The same search with a rank that scored as usual: the select's emptiness is not the search's.
    assert explain(resolve_run(top=65.0, best=0.9, chosen=0), baseline)["cause"]["step"] != "find"


def test_a_cap_that_would_name_more_than_one_correct_run_in_a_hundred_is_not_named():
    # A fifth of the searches hit their limit; one input in ten has no match and scores 0.5 whether
    # or not its search was cut; the bug's truncated runs score 0.5 too. Truncation leads there
    # significantly more often, but one earlier run in fifty was truncated and would have ended so
    # anyway: the rule would name those with the bug's.
    rng = random.Random(5)
    baseline = pick_baseline(bug_share=0.0, limit=60)
    runs = {}
    for s in baseline:
        runs.setdefault(s["run_id"], {})[s["name"]] = s
    for earlier in runs.values():
        cut = rng.random() < 0.2
        earlier["search"]["metrics"]["candidates_out"] = 60 if cut else 45
        no_match = rng.random() < 0.1
        buggy = cut and rng.random() < 0.3
        earlier["score"]["metrics"]["score_max"] = 0.5 if no_match or buggy else 5.0
    bad = pick_run(score=0.5, search_out=60, limit=60)
    result = explain(bad, baseline)
    assert result["symptom"] is not None and result["cause"] is None, result["verdict"]
    # Without the inputs that have no match, the truncated runs are the only ones to end so: named.
    for earlier in runs.values():
        if earlier["search"]["metrics"]["candidates_out"] == 45:
            earlier["score"]["metrics"]["score_max"] = 5.0
    assert explain(bad, baseline)["cause"]["step"] == "search"
