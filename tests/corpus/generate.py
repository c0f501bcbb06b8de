"""Writes hostile_requests.jsonl: bad requests, each with the error it must get.

    python tests/corpus/generate.py

Each line: {"name", "method", "path", "content_type", "headers", "body" (text, or null;
`__DEEP__` and `__OVERSIZED__` stand for bodies too large to keep here), "body_b64" (raw bytes,
for invalid UTF-8 and gzip), "json_events" (events posted beside a valid one), "status" (the 4xx expected), "field" (a
field the error must name; for a 207, a field of the rejected event)}. Events are posted
beside a valid one, which must be kept.
"""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

RUN = "11111111-2222-4333-8444-555555555555"
EVENTS = f"/api/v1/runs/{RUN}/events"
GOOD_TS = "2026-11-25T10:00:00+00:00"


def step_end(**overrides):
    event = {
        "event_id": "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee",
        "type": "step_end",
        "ts": "__NOW__",
        "step_id": "99999999-8888-4777-8666-555555555555",
        "seq": 1,
        "name": "compat_filter",
        "step_type": "filter",
        "status": "ok",
        "metrics": {"candidates_in": 10, "candidates_out": 5},
    }
    event.update(overrides)
    return {k: v for k, v in event.items() if v is not DROP}


DROP = object()


def cases():
    def event_case(name, event, field):
        return {"name": name, "method": "POST", "path": EVENTS, "json_events": [event], "status": 207, "field": field}

    def body_case(name, path, body, status, field, content_type="application/json", headers=None, raw=None):
        return {
            "name": name,
            "method": "POST",
            "path": path,
            "content_type": content_type,
            "headers": headers or {},
            "body": body,
            "body_b64": base64.b64encode(raw).decode() if raw is not None else None,
            "status": status,
            "field": field,
        }

    def get_case(name, path, field, status=400):
        return {"name": name, "method": "GET", "path": path, "status": status, "field": field}

    fields = {
        "event_id": ["not-a-uuid", 5, None, "", "00000000-0000-0000-0000-00000000000g"],
        "type": ["step_middle", 3, None, "", "STEP_END"],
        "ts": [
            "yesterday",
            "2026-11-25 10:00",
            "2026-11-25T10:00:00",
            1732528800,
            "1999-01-01T00:00:00Z",
            "2999-01-01T00:00:00Z",
            "0001-01-01T00:00:00Z",
            "",
        ],
        "step_id": ["x", 12, None, "' OR 1=1 --"],
        "seq": [-1, 1.5, "1", None, 2**31, True],
        "name": ["", 7, None, "x" * 201, "a\u0000b"],
        "step_type": ["classifier", "", None, 1, "FILTER"],
        "status": ["done", "", None, 0],
        "parent_step_id": ["parent", 3],
        "why": [7, ["list"], "nul\u0000byte"],
        "error": ["boom", {"message": "no type"}, {"type": ""}],
        "started_at": ["later", 5],
        "artifacts": [
            "none",
            [{"name": "a"}],
            [{"name": "a", "payload": 1, "ref": {"key": "k"}}],
            [{"name": "", "payload": 1}],
            [{"name": "a", "capture": "everything", "payload": 1}],
            [{"name": "a", "ref": {"key": ""}}],
            [{"name": "a", "ref": {"key": "k", "size_bytes": -1}}],
            [{"name": "a", "ref": {"key": "k", "sha256": "xyz"}}],
            [{"name": "a", "payload": 1}] * 2,
            [{"name": f"a{i}", "payload": i} for i in range(17)],
        ],
        "rejections": [
            "many",
            {"": 1},
            {"r": -1},
            {"r": 1.5},
            {"r": "1"},
            {"x" * 65: 1},
            {"r": 100},
            {f"r{i}": 0 for i in range(18)},
        ],
        "input": [{"deep": json.loads("[" * 40 + "]" * 40)}, "nul\u0000"],
        "output": [["a\u0000"]],
        "surprise": [1],
    }
    out = []
    for field, values in fields.items():
        for i, value in enumerate(values):
            expect = field if field not in ("rejections", "artifacts") else field
            out.append(event_case(f"{field}-{i}", step_end(**{field: value}), expect))
    for field in ("event_id", "type", "ts", "step_id", "seq", "name", "step_type", "status"):
        out.append(event_case(f"missing-{field}", step_end(**{field: DROP}), field))
    metric_values = {
        "candidates_in": [-1, 1.5, "10", True, None, 2**60, [1]],
        "candidates_out": [-5, 11, "x"],
        "drop_ratio": [1.5, -0.1, 0.9, "0.5"],
        "model": ["", 5, "m" * 300, "a\u0000"],
        "temperature": [-1, "hot"],
        "custom": [{"nested": 1}, "x" * 300, [1, 2]],
        "bad key": [1],
        "k\u0000": [1],
    }
    for name, values in metric_values.items():
        for i, value in enumerate(values):
            if value is None:
                continue
            metrics = {"candidates_in": 10, "candidates_out": 5, name: value}
            out.append(event_case(f"metric-{name}-{i}", step_end(metrics=metrics), f"metrics.{name}"))
    out.append(event_case("metrics-not-object", step_end(metrics=[1, 2]), "metrics"))
    out.append(event_case("metrics-too-many", step_end(metrics={f"m{i}": i for i in range(70)}), "metrics.metrics"))
    out.append(event_case("event-not-object", 42, "_event"))
    out.append(event_case("event-list", [1, 2], "_event"))
    out.append(event_case("event-string", "step_end", "_event"))
    out.append(event_case("type-list", {"type": ["step_end"]}, "type"))
    out.append(
        event_case(
            "run-finish-bad-status",
            {
                "event_id": "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee",
                "type": "run_finish",
                "ts": "__NOW__",
                "status": "meh",
            },
            "status",
        )
    )
    out.append(
        event_case(
            "run-finish-no-status",
            {"event_id": "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee", "type": "run_finish", "ts": "__NOW__"},
            "status",
        )
    )
    start = {k: v for k, v in step_end(type="step_start").items() if k != "status"}
    out.append(event_case("step-start-metrics", start, "metrics"))
    # Envelopes and bodies
    envelope = [
        ("events-missing", {}, "events"),
        ("events-empty", {"events": []}, "events"),
        ("events-not-list", {"events": "x"}, "events"),
        ("events-object", {"events": {"a": 1}}, "events"),
        ("events-extra-key", {"events": [step_end()], "more": 1}, "more"),
        ("events-too-many", {"events": [step_end()] * 1001}, "events"),
        ("body-list", [1], "body"),
        ("body-string", "x", "body"),
        ("body-number", 5, "body"),
        ("body-null", None, "body"),
    ]
    for name, body, field in envelope:
        out.append(body_case(name, EVENTS, json.dumps(body), 400, field))
    raw_bodies = [
        ("not-json", "{events:", 400, "invalid_json"),
        ("nan", '{"events": [NaN]}', 400, "invalid_json"),
        ("infinity", '{"events": [Infinity]}', 400, "invalid_json"),
        ("trailing", '{"events": []} x', 400, "invalid_json"),
        ("huge-int", '{"events": [' + "9" * 5000 + "]}", 400, "invalid_json"),
        ("deep", "__DEEP__", 400, "invalid_json"),
        ("empty", "", 400, "invalid_json"),
    ]
    for name, body, status, code in raw_bodies:
        out.append(body_case(f"raw-{name}", EVENTS, body, status, code))
    out.append(body_case("invalid-utf8", EVENTS, None, 400, "invalid_json", raw=b'{"events": ["\xff\xfe"]}'))
    out.append(
        body_case(
            "bad-gzip", EVENTS, None, 400, "invalid_json", headers={"Content-Encoding": "gzip"}, raw=b"not gzip at all"
        )
    )
    out.append(
        body_case(
            "gzip-bomb",
            EVENTS,
            None,
            413,
            "payload_too_large",
            headers={"Content-Encoding": "gzip"},
            raw=gzip.compress(b'{"events": [' + b" " * (6 * 1024 * 1024) + b"]}"),
        )
    )
    out.append(
        body_case(
            "gzip-trailing",
            EVENTS,
            None,
            400,
            "invalid_json",
            headers={"Content-Encoding": "gzip"},
            raw=gzip.compress(b'{"events": []}') + b"junk",
        )
    )
    out.append(body_case("brotli", EVENTS, "{}", 415, "unsupported_media_type", headers={"Content-Encoding": "br"}))
    for ct in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "", "application/xml"):
        out.append(
            body_case(f"content-type-{ct or 'none'}", EVENTS, "{}", 415, "unsupported_media_type", content_type=ct)
        )
    out.append(body_case("oversized", EVENTS, "__OVERSIZED__", 413, "payload_too_large"))
    for bad_id in ("12", "not-a-uuid", "11111111-2222-4333-8444-55555555555", "%27%20OR%201=1"):
        out.append(
            body_case(
                f"run-id-{bad_id[:12]}",
                f"/api/v1/runs/{bad_id}/events",
                json.dumps({"events": [step_end()]}),
                400,
                "run_id",
            )
        )
    runs = [
        ("run-missing-pipeline", {"entity": "e"}, "pipeline"),
        ("run-missing-entity", {"pipeline": "p"}, "entity"),
        ("run-empty-pipeline", {"pipeline": "", "entity": "e"}, "pipeline"),
        ("run-long-entity", {"pipeline": "p", "entity": "e" * 201}, "entity"),
        ("run-bad-id", {"pipeline": "p", "entity": "e", "run_id": "x"}, "run_id"),
        ("run-tags-list", {"pipeline": "p", "entity": "e", "tags": ["a"]}, "tags"),
        ("run-tags-nested", {"pipeline": "p", "entity": "e", "tags": {"a": {"b": 1}}}, "tags"),
        ("run-tags-many", {"pipeline": "p", "entity": "e", "tags": {f"k{i}": "v" for i in range(40)}}, "tags"),
        ("run-tag-long", {"pipeline": "p", "entity": "e", "tags": {"k": "v" * 300}}, "tags"),
        ("run-started-naive", {"pipeline": "p", "entity": "e", "started_at": "2026-11-25T10:00:00"}, "started_at"),
        ("run-started-future", {"pipeline": "p", "entity": "e", "started_at": "2999-01-01T00:00:00Z"}, "started_at"),
        ("run-nul", {"pipeline": "p\u0000", "entity": "e"}, "pipeline"),
        ("run-surprise", {"pipeline": "p", "entity": "e", "owner": "me"}, "owner"),
        (
            "run-metadata-deep",
            {"pipeline": "p", "entity": "e", "metadata": json.loads("[" * 40 + "]" * 40)},
            "metadata",
        ),
        ("run-pipeline-number", {"pipeline": 5, "entity": "e"}, "pipeline"),
    ]
    for name, body, field in runs:
        out.append(body_case(name, "/api/v1/runs", json.dumps(body), 400, field))
    queries = [
        ("step_type=classifier", "step_type"),
        ("min_drop_ratio=2", "min_drop_ratio"),
        ("min_drop_ratio=-1", "min_drop_ratio"),
        ("min_drop_ratio=nan", "min_drop_ratio"),
        ("min_drop_ratio=inf", "min_drop_ratio"),
        ("max_drop_ratio=x", "max_drop_ratio"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=-5", "limit"),
        ("limit=ten", "limit"),
        ("since=yesterday", "since"),
        ("since=999999w", "since"),
        ("until=2026-11-25", "until"),
        ("since=1h&until=2h", "since"),
        ("status=done", "status"),
        ("violations=maybe", "violations"),
        ("cursor=abc", "cursor"),
        ("cursor=W10", "cursor"),
        ("cursor=" + base64.urlsafe_b64encode(b'["2026-11-25T00:00:00", "x", "y"]').decode(), "cursor"),
        ("cursor=" + "A" * 600, "cursor"),
        ("unknown=1", "unknown"),
        ("min_drop=0.9", "min_drop"),
        ("name=a&name=b", "name"),
        ("pipeline=" + "p" * 300, "pipeline"),
        ("min_reason_share=0.5", "min_reason_share"),
        ("reason=" + "r" * 70, "reason"),
        ("pipeline=x%27%3B%20DROP%20TABLE%20steps%3B--&limit=ten", "limit"),
        ("step_type=filter%27%20OR%20%271%27=%271", "step_type"),
        ("since=1%3B%20SELECT%20pg_sleep(10)", "since"),
        ("name=%00", "name"),
    ]
    for i, (query, field) in enumerate(queries):
        out.append(get_case(f"steps-query-{i}", f"/api/v1/steps?{query}", field))
    for i, (query, field) in enumerate(
        [
            ("status=done", "status"),
            ("limit=0", "limit"),
            ("since=never", "since"),
            ("pipeline=", "pipeline"),
            ("entity=" + "e" * 300, "entity"),
            ("cursor=zzz", "cursor"),
            ("foo=bar", "foo"),
        ]
    ):
        out.append(get_case(f"runs-query-{i}", f"/api/v1/runs?{query}", field))
    for i, (query, field) in enumerate(
        [("since=never", "since"), ("step_type=x", "step_type"), ("min_drop_ratio=0.5", "min_drop_ratio")]
    ):
        out.append(get_case(f"stats-query-{i}", f"/api/v1/steps/stats?{query}", field))
        out.append(get_case(f"reasons-query-{i}", f"/api/v1/steps/reasons?{query}", field))
    for bad in ("12", "not-a-uuid", "%27"):
        out.append(get_case(f"get-run-{bad}", f"/api/v1/runs/{bad}", "run_id"))
        out.append(get_case(f"get-artifact-{bad}", f"/api/v1/artifacts/{bad}", "artifact_id"))
    return out


if __name__ == "__main__":
    path = Path(__file__).with_name("hostile_requests.jsonl")
    rows = cases()
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    print(f"{len(rows)} cases written to {path}")
