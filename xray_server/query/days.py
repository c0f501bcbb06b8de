"""Which partitions a read touches: conditions on `run_day` that follow from a time window or a
run id, so that PostgreSQL skips every other partition (ARCHITECTURE.md, "Partitions and
retention"). They only narrow what is read, never what is found, within the rule below."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from psycopg import sql

from xray_server.storage.partitions import KEPT_DAY

# A run's day is the day it started, and its steps start after it: a step in a window belongs to
# a run of the window's days or of the day before. A run that lasts longer than this is found by a
# window only through the steps it took in its first day: the one rule the pruning adds.
RUN_SPAN = timedelta(days=1)


def window_days(
    alias: str, params: dict[str, Any], since: datetime | None, until: datetime | None, *, name: str = "day"
) -> list[sql.Composable]:
    """Conditions on `alias.run_day` for rows of a window [since, until), their parameters added to
    `params` under `name`; the kept runs are in every window that reaches back before their day."""
    column = sql.Identifier(alias, "run_day")
    clauses: list[sql.Composable] = []
    if since is not None:
        params.update({f"{name}_from": _day(since - RUN_SPAN), "kept_day": KEPT_DAY})
        clauses.append(
            sql.SQL("({} >= {} OR {} = %(kept_day)s)").format(column, sql.Placeholder(f"{name}_from"), column)
        )
    if until is not None:
        params[f"{name}_to"] = _day(until + RUN_SPAN)
        clauses.append(sql.SQL("{} <= {}").format(column, sql.Placeholder(f"{name}_to")))
    return clauses


def _day(at: datetime) -> date:
    return at.astimezone(UTC).date() if at.tzinfo else at.date()
