"""explain on synthetic pipelines with known faults (`bench/explain_eval.py`, a fixed seed, small):
the injected step is named as the cause in bad runs, and good runs are left alone. The full
evaluation and its figures are in BENCHMARKS.md."""

from bench.explain_eval import FAULTS, _rates, _summed, evaluate


def test_explain_names_the_injected_step_and_leaves_good_runs_alone(xray_server):
    # Each pipeline runs 60 good runs before its bug (explain judges no step with less history).
    result = evaluate(xray_server.base_url, runs=140, pipelines=1, good_sample=20, seed=14)
    per_fault = result["per_fault"]
    assert set(per_fault) == set(FAULTS)
    total = _summed(per_fault.values())
    named, accused = _rates(total)
    assert named >= 0.9, per_fault
    assert accused <= 0.05, per_fault
    for fault, scores in per_fault.items():
        assert _rates(scores)[0] >= 0.6, (fault, scores)
