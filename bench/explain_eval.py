"""How often `explain` names the right step, on synthetic pipelines with known faults.

A generator builds pipelines of 4 to 8 steps of all six types (a retrieval step nests its
searches), with the shapes real metrics take: counts that spread by factors and two segments of
input (a third of the runs return three times the results), searches truncated at the limit they
record, a search's best similarity tied at 100 with a filled lower tail (typos), a rank's best
score piled near its bound with a filled lower tail (hard inputs), a reason that is absent from
most runs (zero-inflated), a final select that chooses from one or two, heavy-tailed durations.
In each pipeline a share of the runs (10 to 30%) shares one bug, injected at one step, of one
kind:

- `starved_search`: a search returns a handful of results (every later step is starved);
- `model_fallback`: an llm falls back to a weaker model that produces one poor keyword;
- `over_filter`: a filter drops nearly everything;
- `score_collapse`: a rank step's `score_max` collapses under a new scorer (its `scorer` metric);
- `new_reason`: a filter rejects most candidates for a reason it rarely gives;
- `recall_loss`: a search returns its usual, truncated count, without its best candidates;
- `lost_match`: a search returns its usual count, but its best match is a look-alike (its
  similarity, `score_top`, falls into and below the tail that typos fill);
- `error`: a step raises;
- `empty_output`: a filter keeps nothing;
- `missing_metrics`: a filter records no counts;
- `slow_step`: a step takes 80 ms longer.

A bug makes a run's outcome worse, as a real one does: when the candidates lost their best (a
starved or truncated search, a poor keyword, an over-eager filter), the rank's best score falls
below anything a hard input gets. Good runs carry every legitimate shape above, so a rule that
takes a tail for a fault accuses them.

Every run is recorded through the SDK against a real server (gunicorn, embedded PostgreSQL),
then explained over HTTP (`GET /api/v1/runs/<id>/explain`) and scored against the known answer:
the share of bad runs whose injected step is the `cause` (the top finding, for an explain that
has no `cause` field), and the share of good runs that name any cause.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg

import xray_sdk
from xray_server.analysis.thresholds import MIN_BASELINE
from xray_server.runtime.local_server import LocalServer
from xray_server.storage.migrations import migrate

from .database import bench_database

TITLE = "Explain: the right step, on synthetic pipelines with known faults"
FIRST_FAULTS = (
    "starved_search",
    "model_fallback",
    "over_filter",
    "score_collapse",
    "new_reason",
    "recall_loss",
    "error",
    "empty_output",
    "missing_metrics",
    "slow_step",
)
# Kinds added after the first ten draw their pipelines from a random stream of their own (seed and
# kind), so that adding one leaves the earlier kinds' pipelines, and their figures, as they were.
ADDED_FAULTS = ("lost_match",)
FAULTS = FIRST_FAULTS + ADDED_FAULTS
# Runs of each pipeline before its bug is deployed: explain judges no step with a history shorter
# than `thresholds.MIN_BASELINE`.
WARM_UP = MIN_BASELINE + 10
# What is counted per fault kind: bad runs, those naming the injected step, good runs, those naming any.
SCORES = ("bad", "named", "good", "accused")
# Which step type each fault is injected into.
FAULT_STEP = {
    "starved_search": "search",
    "model_fallback": "llm",
    "over_filter": "filter",
    "score_collapse": "rank",
    "new_reason": "filter",
    "recall_loss": "search",
    "lost_match": "search",
    "error": "any",
    "empty_output": "filter",
    "missing_metrics": "filter",
    "slow_step": "any",
}


@dataclass
class StepSpec:
    name: str
    step_type: str
    params: dict[str, float]
    children: list[StepSpec] = field(default_factory=list)


@dataclass
class PipelineSpec:
    name: str
    steps: list[StepSpec]
    fault: str
    fault_step: str
    bad_share: float


def make_pipeline(rng: random.Random, seed: int, index: int, fault: str, bad_share: float) -> PipelineSpec:
    """An llm, a retrieval (searches, sometimes nested in a custom step), 1 to 3 filters, maybe a
    custom enrichment, a rank and a select: 4 to 8 top-level steps."""
    steps = [StepSpec("make_query", "llm", {"keywords": rng.randint(3, 6), "tokens": rng.uniform(200, 800)})]
    if rng.random() < 0.5:
        steps.append(
            StepSpec(
                "retrieve",
                "custom",
                {},
                [StepSpec(f"search_{k}", "search", {"per_keyword": rng.uniform(30, 200)}) for k in ("a", "b")],
            )
        )
    else:
        steps.append(StepSpec("search", "search", {"per_keyword": rng.uniform(60, 400)}))
    for i in range(rng.randint(1, 3)):
        steps.append(
            StepSpec(f"filter_{i}", "filter", {"drop": rng.uniform(0.1, 0.6), "noise": rng.uniform(0.02, 0.08)})
        )
    if rng.random() < 0.5:
        steps.append(StepSpec("enrich", "custom", {"coverage": rng.uniform(0.7, 0.95)}))
    steps.append(StepSpec("rank", "rank", {"keep": rng.randint(5, 20), "score": rng.uniform(0.6, 0.9)}))
    steps.append(StepSpec("select", "select", {}))
    flat = [s for top in steps for s in [top, *top.children]]
    wanted = FAULT_STEP[fault]
    targets = [s for s in flat if (wanted == "any" and not s.children) or s.step_type == wanted]
    if fault == "score_collapse" and not targets:
        targets = [s for s in flat if s.step_type == "rank"] or [s for s in flat if s.step_type == "filter"]
    target = rng.choice(targets or flat)
    return PipelineSpec(f"eval_s{seed}_{index}_{fault}", steps, fault, target.name, bad_share)


class Runner:
    """Runs one pipeline spec through the SDK; the fault fires on bad runs at its step."""

    def __init__(self, spec: PipelineSpec, rng: random.Random) -> None:
        self.spec, self.rng = spec, rng
        # The searches' similarities come from a stream of their own: the other draws stay as they
        # were before searches recorded one.
        self.similarity = random.Random(spec.name)

    def run(self, client: xray_sdk.Client, bad: bool) -> str:
        rng = self.rng
        segment = rng.choice("abc")
        with client.start_run(self.spec.name, f"e{rng.randint(0, 10**9)}", tags={"segment": segment}) as run:
            # Segment `c` is another kind of input: three times the results (a volume, not a fault).
            state: dict[str, Any] = {"keywords": 4, "candidates": 0, "scale": 3.0 if segment == "c" else 1.0}
            # Whether the candidates lost their best on the way: the rank's best score shows it.
            state["damaged"] = False
            for spec in self.spec.steps:
                try:
                    self._step(run, spec, state, bad)
                except RuntimeError:
                    break  # the injected error ends the run, as it would a pipeline
        return run.run_id

    def _faulty(self, spec: StepSpec, bad: bool, kind: str | None = None) -> bool:
        return bad and spec.name == self.spec.fault_step and (kind is None or self.spec.fault == kind)

    def _step(self, run: Any, spec: StepSpec, state: dict[str, Any], bad: bool) -> None:
        rng = self.rng
        with run.step(spec.name, spec.step_type) as step:
            # Durations are heavy-tailed: most steps take a millisecond, a few take ten.
            time.sleep(min(0.02, rng.lognormvariate(-7.0, 1.0)))
            if self._faulty(spec, bad, "slow_step"):
                time.sleep(0.08)
            if self._faulty(spec, bad, "error"):
                raise RuntimeError("injected failure")
            if spec.children:
                total = 0
                for child in spec.children:
                    self._step(run, child, state, bad)
                    total += state["last_out"]
                state["candidates"] = total
                step.candidates(state["keywords"], total)
                return
            getattr(self, f"_{spec.step_type}")(step, spec, state, bad)

    def _llm(self, step: Any, spec: StepSpec, state: dict[str, Any], bad: bool) -> None:
        fallback = self._faulty(spec, bad, "model_fallback")
        keywords = 1 if fallback else max(1, int(spec.params["keywords"] + self.rng.choice((-1, 0, 0, 1))))
        state["damaged"] |= fallback  # its one keyword is a poor one
        step.model("m-small" if fallback else "m-large", 0.2)
        step.candidates(1, keywords).metrics(tokens=int(spec.params["tokens"] * self.rng.lognormvariate(0, 0.15)))
        state["keywords"] = keywords

    def _search(self, step: Any, spec: StepSpec, state: dict[str, Any], bad: bool) -> None:
        expected = spec.params["per_keyword"] * state["keywords"] * state["scale"]
        # The search returns at most its limit, which about half of the runs reach.
        limit = int(expected * 1.1)
        results = min(limit, int(expected * self.rng.lognormvariate(0, 0.35)))
        if self._faulty(spec, bad, "starved_search"):
            results = self.rng.randint(1, 4)
            state["damaged"] = True
        if self._faulty(spec, bad, "recall_loss"):
            results = limit  # truncated, its usual count, and its best candidates cut
            state["damaged"] = True
        # Its best match's similarity (0 to 100): exact for most inputs; a typo or a variant spelling
        # puts one input in eight anywhere from 65 to 99 (a filled tail: hard inputs, not a fault).
        top = 100.0 if self.similarity.random() >= 0.12 else round(self.similarity.uniform(65, 99), 1)
        if self._faulty(spec, bad, "lost_match"):
            # The right entry is not in what it searched: its best is a look-alike, as many as usual.
            top = round(self.similarity.uniform(40, 72), 1)
            state["damaged"] = True
        step.candidates(state["keywords"], results).metrics(limit=limit, score_top=top)
        state["last_out"] = state["candidates"] = results

    def _filter(self, step: Any, spec: StepSpec, state: dict[str, Any], bad: bool) -> None:
        cin = state["candidates"]
        drop = min(0.95, max(0.0, self.rng.gauss(spec.params["drop"], spec.params["noise"])))
        new_reason = self._faulty(spec, bad, "new_reason")
        if self._faulty(spec, bad, "over_filter"):
            drop = self.rng.uniform(0.97, 0.995)
            state["damaged"] = True
        if new_reason:
            drop = min(0.95, drop + 0.5)
            state["damaged"] = True
        if self._faulty(spec, bad, "empty_output"):
            drop = 1.0
        cout = int(round(cin * (1 - drop)))
        removed = cin - cout
        if self._faulty(spec, bad, "missing_metrics"):
            state["candidates"] = cout
            return
        first_reason, second_reason = (
            ("stale_listing", "price_out_of_band") if new_reason else ("price_out_of_band", "category_mismatch")
        )
        share = min(1.0, max(0.0, (0.8 if new_reason else 0.6) + self.rng.uniform(-0.1, 0.1)))
        first = int(removed * share)
        # A third reason is absent from most runs (zero-inflated), and takes a little when present.
        third = int((removed - first) * self.rng.uniform(0.1, 0.4)) if self.rng.random() < 0.4 else 0
        rejected = (
            [(i, first_reason) for i in range(first)]
            + [(i, second_reason) for i in range(first, removed - third)]
            + [(i, "out_of_stock") for i in range(removed - third, removed)]
        )
        step.decide(range(cout), rejected)
        state["candidates"] = cout

    def _rank(self, step: Any, spec: StepSpec, state: dict[str, Any], bad: bool) -> None:
        cin = state["candidates"]
        cout = min(cin, int(spec.params["keep"]))
        # Piled near its bound, with a filled lower tail: hard inputs score anywhere down to 0.35
        # below the usual, a bug's damaged candidates below that.
        score = min(1.0, self.rng.gauss(spec.params["score"], 0.02))
        if self.rng.random() < 0.12:
            score -= self.rng.uniform(0.0, 0.35)
        collapsed = self._faulty(spec, bad, "score_collapse")
        if collapsed or state["damaged"]:
            score = self.rng.uniform(0.02, 0.18)
        # The rank records its scorer's version, as a deployed ranker does: a collapse that came with
        # a new scorer is the rank's own; one with nothing of the rank's changed looks like a recall
        # loss or an entity with no good match, and explain does not blame the rank for it.
        step.candidates(cin, cout).metrics(
            score_max=round(min(1.0, max(0.0, score)), 4), scorer="r-next" if collapsed else "r-main"
        )
        state["candidates"] = cout

    def _select(self, step: Any, spec: StepSpec, state: dict[str, Any], bad: bool) -> None:
        cin = state["candidates"]
        step.candidates(cin, min(cin, 1))

    def _custom(self, step: Any, spec: StepSpec, state: dict[str, Any], bad: bool) -> None:
        cin = state["candidates"]
        step.candidates(cin, cin).metrics(coverage=round(self.rng.gauss(spec.params["coverage"], 0.03), 4))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, default=200, help="runs per pipeline")
    parser.add_argument("--pipelines", type=int, default=2, help="pipelines per fault kind")
    parser.add_argument("--good", type=int, default=60, help="good runs explained per pipeline")
    parser.add_argument("--seeds", default="14", help="comma-separated seeds, each a different set of pipelines")


def evaluate(base_url: str, runs: int, pipelines: int, good_sample: int, seed: int) -> dict[str, Any]:
    """Record the pipelines, explain their runs and score the answers."""
    shared = random.Random(seed)
    plan = [(FIRST_FAULTS[i % len(FIRST_FAULTS)], shared) for i in range(pipelines * len(FIRST_FAULTS))]
    for fault in ADDED_FAULTS:
        own = random.Random(f"{seed}:{fault}")
        plan += [(fault, own)] * pipelines
    client = xray_sdk.Client(base_url, capture="sample", delivery=xray_sdk.DeliveryConfig(max_attempts=1000))
    recorded: list[tuple[PipelineSpec, list[tuple[str, bool]]]] = []
    try:
        for index, (fault, rng) in enumerate(plan):
            spec = make_pipeline(rng, seed, index, fault, rng.choice((0.1, 0.2, 0.3)))
            runner = Runner(spec, rng)
            # A history before the bug (as a bug is deployed into a pipeline that ran before it):
            # explain holds a run to the runs before it, and judges nothing in the first few.
            bads = [False] * WARM_UP + [rng.random() < spec.bad_share for _ in range(runs - WARM_UP)]
            recorded.append((spec, [(runner.run(client, bad), bad) for bad in bads]))
            # One pipeline at a time: a queue that overflowed would drop steps, and a run missing
            # its faulty step would be scored as a miss of explain's.
            delivered = client.flush(120)
            lost = client.stats()["dropped_total"]
            if not delivered or lost:
                raise RuntimeError(
                    f"the evaluation's runs were not all stored ({lost} events lost); its scores would be wrong"
                )
    finally:
        client.close()
    per_fault: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(SCORES, 0))
    examples: dict[str, list[str]] = defaultdict(list)
    for spec, runs_ in recorded:
        scores = per_fault[spec.fault]
        # The latest good runs: those with the longest history, as most runs of a pipeline have.
        good = [r for r, bad in runs_ if not bad][-good_sample:]
        for run_id, bad in runs_:
            if not bad and run_id not in good:
                continue
            answer = get_json(base_url, f"/api/v1/runs/{run_id}/explain")
            named = _cause_step(answer)
            if bad:
                scores["bad"] += 1
                scores["named"] += named == spec.fault_step
                if named != spec.fault_step and len(examples[spec.fault]) < 3:
                    examples[spec.fault].append(f"{spec.fault_step}: {summary(answer)}")
            else:
                scores["good"] += 1
                scores["accused"] += named is not None
                if named is not None and len(examples["accused"]) < 5:
                    examples["accused"].append(summary(answer))
    return {"per_fault": dict(per_fault), "examples": dict(examples)}


def summary(answer: dict[str, Any]) -> str:
    """The verdict and each finding's step, role and message: what a reader needs to see why."""
    findings = "; ".join(f"[{f['step']} {f['role']}] {f['message']}" for f in answer.get("findings", []))
    return f"{answer['verdict']} | {findings}"


def _cause_step(answer: dict[str, Any]) -> str | None:
    if "cause" in answer:
        return answer["cause"]["step"] if answer["cause"] else None
    # An explain without a `cause`: its verdict names the top serious finding, if any.
    serious = [f for f in answer["findings"] if f["kind"] not in ("dropped_evidence",)]
    return serious[0]["step"] if serious and not answer["verdict"].startswith("No step") else None


def get_json(base_url: str, path: str) -> Any:
    with urllib.request.urlopen(base_url + path, timeout=60) as response:
        return json.load(response)


def run(args: argparse.Namespace) -> dict[str, Any]:
    # A fresh database and artifact folder: runs of an earlier evaluation (same pipeline names)
    # would be in the baselines and change the scores.
    with bench_database() as (url, _), tempfile.TemporaryDirectory(prefix="xray-eval-") as data_dir:
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn)
        env = {"XRAY_WORKERS": "2", "XRAY_DATABASE_URL": url, "XRAY_ARTIFACTS_DIR": f"{data_dir}/artifacts"}
        seeds = [int(seed) for seed in args.seeds.split(",")]
        with LocalServer(env) as server:
            evaluated = {seed: evaluate(server.base_url, args.runs, args.pipelines, args.good, seed) for seed in seeds}
    per_seed = {seed: e["per_fault"] for seed, e in evaluated.items()}
    pooled = {fault: _summed(p[fault] for p in per_seed.values()) for fault in FAULTS}
    return {
        "examples": {str(seed): e["examples"] for seed, e in evaluated.items()},
        "per_fault": pooled,
        "per_seed": {str(seed): p for seed, p in per_seed.items()},
        "settings": {
            "runs": args.runs,
            "pipelines_per_fault": args.pipelines,
            "good_sample": args.good,
            "seeds": seeds,
        },
    }


def _summed(scores: Iterable[dict[str, int]]) -> dict[str, int]:
    """The scores of several pipelines, kinds or seeds, added up."""
    listed = list(scores)
    return {key: sum(s[key] for s in listed) for key in SCORES}


def _rates(scores: dict[str, int]) -> tuple[float, float]:
    return (
        scores["named"] / scores["bad"] if scores["bad"] else 0.0,
        scores["accused"] / scores["good"] if scores["good"] else 0.0,
    )


def report(result: dict[str, Any]) -> str:
    lines = [
        "| fault kind | bad runs | injected step named as the cause | good runs | good runs with a cause |",
        "|---|---|---|---|---|",
    ]
    for fault in FAULTS:
        s = result["per_fault"].get(fault)
        if not s:
            continue
        named, accused = _rates(s)
        lines.append(f"| `{fault}` | {s['bad']} | {named:.0%} | {s['good']} | {accused:.1%} |")
    total = _summed(result["per_fault"].values())
    named, accused = _rates(total)
    lines.append(f"| all | {total['bad']} | {named:.0%} | {total['good']} | {accused:.1%} |")
    per_seed = result.get("per_seed") or {}
    if per_seed:
        lines += ["", "Each seed is its own set of pipelines, and each kind is judged on each seed:", ""]
    for seed, per_fault in per_seed.items():
        total = _summed(per_fault.values())
        worst_kind = min(((_rates(s)[0], f) for f, s in per_fault.items() if s["bad"]), default=(0.0, "none"))
        named, accused = _rates(total)
        lines.append(
            f"- seed {seed}: {named:.0%} of {total['bad']} bad runs named, worst kind `{worst_kind[1]}` at "
            f"{worst_kind[0]:.0%}; {accused:.1%} of {total['good']} good runs with a cause."
        )
    if per_seed:
        lines += [
            "",
            "| fault kind | " + " | ".join(f"seed {seed}: named / good runs with a cause" for seed in per_seed) + " |",
            "|---|" + "---|" * len(per_seed),
        ]
    for fault in FAULTS if per_seed else ():
        cells = []
        for per_fault in per_seed.values():
            s = per_fault.get(fault)
            cells.append("n/a" if not s else f"{_rates(s)[0]:.0%} of {s['bad']} / {_rates(s)[1]:.1%} of {s['good']}")
        lines.append(f"| `{fault}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def worst(result: dict[str, Any]) -> tuple[tuple[float, str, str], tuple[float, str, str]]:
    """((named, kind, seed) of the kind and seed that named the fewest, (accused, kind, seed) of the
    kind and seed that accused the most good runs): each kind is judged on each seed, never pooled,
    so that a kind that passes on one seed does not hide its failure on another. A result without
    seeds is judged per kind."""
    cells = [
        (fault, seed, s)
        for seed, per_fault in (result.get("per_seed") or {"all": result["per_fault"]}).items()
        for fault, s in per_fault.items()
    ]
    named = min(((_rates(s)[0], f, seed) for f, seed, s in cells if s["bad"]), default=(0.0, "none", ""))
    accused = max(((_rates(s)[1], f, seed) for f, seed, s in cells if s["good"]), default=(0.0, "none", ""))
    return named, accused


def reading(result: dict[str, Any]) -> str:
    (named, named_kind, named_seed), (accused, accused_kind, accused_seed) = worst(result)
    cells = [(seed, f, s) for seed, per_fault in (result.get("per_seed") or {}).items() for f, s in per_fault.items()]
    missed = [f"`{f}` on seed {seed}" for seed, f, s in cells if s["bad"] and _rates(s)[0] < 0.95]
    accusing = [f"`{f}` on seed {seed}" for seed, f, s in cells if s["good"] and _rates(s)[1] > 0.01]
    return "\n".join(
        [
            f"- **Goal: at least 95% of bad runs name the injected step, for each fault kind** (on each seed): the "
            f"worst is `{named_kind}` on seed {named_seed} at {named:.0%}: {'met' if named >= 0.95 else '**not met**'}"
            + (f" (under 95%: {', '.join(missed)})." if missed else "."),
            f"- **Goal: at most 1% of good runs name any cause** (for each fault kind's pipelines, on each seed): the "
            f"worst is `{accused_kind}` on seed {accused_seed} at {accused:.1%}: "
            f"{'met' if accused <= 0.01 else '**not met**'}"
            + (f" (over 1%: {', '.join(accusing)})." if accusing else "."),
        ]
    )
