"""Which run and step the current thread or asyncio task is inside."""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .run import Run
    from .steps import Step

current_run_var: contextvars.ContextVar[Run | None] = contextvars.ContextVar("xray_run", default=None)
current_step_var: contextvars.ContextVar[Step | None] = contextvars.ContextVar("xray_step", default=None)


def current_run() -> Run | None:
    """The run of the innermost `with run:` block in this context, if any."""
    return current_run_var.get()


def current_step() -> Step | None:
    """The innermost step in progress in this context, if any."""
    return current_step_var.get()
