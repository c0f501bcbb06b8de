"""The debugging walkthrough `xray demo` prints, computed from the HTTP API alone. All of its
wording about products, categories and feeds is the demo's own: the product knows none of it."""

from __future__ import annotations

from collections import Counter
from typing import Any

from xray_cli import render
from xray_cli.api import Api

# The demo's candidates are products, identified by their ASIN.
ID_FIELD = "asin"


def walkthrough(api: Api, pipeline: str, since: str, threshold: float = 0.9) -> dict[str, Any]:
    """Find the bad runs of `pipeline` since `since`, explain one, and find the pattern."""
    runs = api.get_all("/api/v1/runs", "runs", pipeline=pipeline, since=since)
    flagged = api.get_all(
        "/api/v1/steps", "steps", pipeline=pipeline, step_type="filter", min_drop_ratio=threshold, since=since
    )
    bad_ids = list(dict.fromkeys(s["run_id"] for s in flagged))
    result: dict[str, Any] = {
        "pipeline": pipeline,
        "since": since,
        "threshold": threshold,
        "runs": len(runs),
        "flagged_steps": flagged,
        "bad_runs": bad_ids,
    }
    if not bad_ids:
        return result
    example_id = bad_ids[0]
    result["example"] = api.run(example_id)
    result["explain"] = api.explain(example_id)
    result["evidence"], content = _evidence(api, result["example"], result["explain"])
    result["dropped_candidate"] = _a_dropped_candidate(api, result["example"], result["evidence"], content)
    good = _good_twin(runs, set(bad_ids), result["example"])
    if good is not None:
        result["diff"] = api.diff(good["run_id"], example_id)
    result["patterns"] = api.patterns(pipeline=pipeline, since=since, step_type="filter", min_drop_ratio=threshold)
    return result


def _evidence(api: Api, run: dict[str, Any], explained: dict[str, Any]) -> tuple[dict[str, Any] | None, Any]:
    """The kept evidence of the step the explanation names, when the cold tier has it, and
    the artifact's content."""
    cause = explained["cause"]
    if cause is None:
        return None, None
    step = next(s for s in run["steps"] if s["seq"] == cause["seq"])
    stored = sorted(
        (a for a in step["artifacts"] if a.get("link")), key=lambda a: a["name"] != "rejected_sample"
    )  # what it threw away, first
    if not stored:
        return {"step": step["name"], "artifacts": [a["name"] for a in step["artifacts"]], "kept": False}, None
    content = api.get(stored[0]["link"])
    items = [
        item.get("candidate", item) if isinstance(item, dict) else item
        for item in (content if isinstance(content, list) else [])
    ]
    categories = Counter(str(item.get("category")) for item in items if isinstance(item, dict))
    return {
        "step": step["name"],
        "artifact": stored[0]["name"],
        "link": stored[0]["link"],
        "kept": True,
        "items": len(content) if isinstance(content, list) else None,
        "categories": dict(categories.most_common()),
    }, content


def _a_dropped_candidate(
    api: Api, run: dict[str, Any], evidence: dict[str, Any] | None, content: Any
) -> dict[str, Any] | None:
    """A rejected candidate of the run's own category, traced with why-dropped: the right
    answer the step threw away, by id."""
    if not evidence or not evidence.get("kept") or evidence.get("artifact") != "rejected_sample":
        return None
    category = _norm((run.get("tags") or {}).get("category", ""))
    rows = [r for r in content if isinstance(r, dict) and isinstance(r.get("candidate"), dict)]
    chosen = next(
        (r for r in rows if _norm(str(r["candidate"].get("category", ""))) == category), rows[0] if rows else None
    )
    if chosen is None:
        return None
    candidate_id = chosen.get("id") or chosen["candidate"].get(ID_FIELD)
    if candidate_id is None:
        return None
    return api.why_dropped(run["run_id"], str(candidate_id))


def _norm(category: str) -> str:
    return category.strip().lower().replace(" ", "_").rstrip("s")


def _good_twin(runs: list[dict[str, Any]], bad: set[str], example: dict[str, Any]) -> dict[str, Any] | None:
    """The newest good run with the example's tags where possible: the most telling diff."""
    good = [r for r in runs if r["run_id"] not in bad and r["status"] == "ok"]
    category = (example.get("tags") or {}).get("category")
    alike = [r for r in good if (r.get("tags") or {}).get("category") == category]
    return (alike or good or [None])[0]


def walkthrough_text(result: dict[str, Any]) -> str:
    """The walkthrough for a terminal."""
    h = lambda text: render.paint(text, "cyan", bold=True)  # noqa: E731
    pipeline, since = result["pipeline"], result["since"]
    lines = [
        h(
            f"1. Which runs went wrong? Filter steps that dropped at least {result['threshold']:.0%} "
            f"of their candidates:"
        ),
        f"   xray steps --pipeline {pipeline} --type filter --min-drop-ratio {result['threshold']} --since {since}",
        "",
    ]
    flagged = result["flagged_steps"]
    lines.append(render.steps_text(flagged[:10]))
    if len(flagged) > 10:
        lines.append(f"... and {len(flagged) - 10} more")
    lines.append(f"\n{len(result['bad_runs'])} of {result['runs']} runs have such a step.")
    if not result["bad_runs"]:
        return "\n".join(lines)
    example = result["example"]
    lines += [
        "",
        h("2. One bad run, step by step:"),
        f"   xray show {example['run_id']}",
        "",
        render.show_text(example),
    ]
    lines += [
        "",
        h("3. What went wrong, which step caused it, and why (against the runs before it):"),
        f"   xray explain {example['run_id']}",
        "",
        render.explain_text(result["explain"]),
    ]
    evidence = result.get("evidence")
    if evidence and evidence["kept"]:
        cats = ", ".join(f"{c} ({n})" for c, n in evidence["categories"].items())
        lines += [
            "",
            h(f"   The evidence it kept ({evidence['artifact']}, a sample of what it rejected):"),
            f"   GET {evidence['link']}",
            f"   {evidence['items']} rejected candidates by category: {cats}",
        ]
    elif evidence:
        lines += ["", f"   No evidence was kept for {evidence['step']}: the run is explained by its metrics alone."]
    traced = result.get("dropped_candidate")
    if traced and traced["found"]:
        lines += [
            "",
            h("   One of the right candidates it dropped, traced by id:"),
            f"   xray why-dropped {example['run_id']} {traced['candidate_id']}",
            "",
            "   " + render.why_dropped_text(traced).replace("\n", "\n   "),
        ]
    if "diff" in result:
        d = result["diff"]
        lines += [
            "",
            h("4. A good run of the same category beside the bad one:"),
            f"   xray diff {d['a']['run_id']} {d['b']['run_id']}",
            "",
            render.diff_text(d),
        ]
    lines += [
        "",
        h("5. What the bad runs have in common, and since when:"),
        f"   xray patterns --pipeline {pipeline} --type filter --min-drop-ratio {result['threshold']} --since {since}",
        "",
        render.patterns_text(result["patterns"]),
    ]
    return "\n".join(lines)
