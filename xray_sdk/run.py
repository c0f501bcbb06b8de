"""A run, and the `step` decorator that finds the current run through contextvars."""

from __future__ import annotations

import contextvars
import functools
import inspect
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .context import current_run_var
from .contract.vocabulary import RunStatus, StepType
from .delivery.worker import EVENT
from .errors import XRayContractError
from .ids import new_id
from .steps import Step
from .values import bounded_summary, error_info, now_iso

if TYPE_CHECKING:
    from .client import Client
    from .recorder import Recorder

T = TypeVar("T")


class Run:
    """One execution of a pipeline on one entity. A context manager: leaving the block
    finishes the run, recording the exception if one escaped."""

    def __init__(
        self, client: Client, recorder: Recorder, run_id: str, pipeline: str, entity: str, capture: str
    ) -> None:
        self.client = client
        self.recorder = recorder
        self.run_id = run_id
        self.pipeline = pipeline
        self.entity = entity
        self.capture = capture
        self.finished = False
        self._seq = itertools.count()
        self._tokens: list[contextvars.Token[Run | None]] = []

    def step(
        self,
        name: str,
        step_type: str,
        fn: Callable[..., T] | None = None,
        /,
        *args: Any,
        input: Any = None,
        capture: str | None = None,
        id_field: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """A step of this run, in one of two forms.

        Without `fn`: the step, to use with `with` or `async with`. With `fn`: call
        `fn(step, *args, **kwargs)` inside the step and return its result (a coroutine if `fn`
        is async). In both forms `input=`, `capture=` and `id_field=` are the step's own
        options and never reach `fn`: `input` is recorded as the step's input, `capture` sets
        its capture level, and `id_field` names the key or attribute that identifies a
        candidate in the evidence of `keep`, `reject` and `decide`.
        """
        step = Step(self, name, step_type, input, capture, id_field)
        if fn is None:
            return step
        if inspect.iscoroutinefunction(fn):

            async def run_async() -> Any:
                async with step:
                    return await fn(step, *args, **kwargs)

            return run_async()
        with step:
            return fn(step, *args, **kwargs)

    def finish(self, outcome: Any = None, *, status: str | None = None, error: BaseException | Any = None) -> None:
        """End the run with an outcome, or with an error; only the first call counts."""
        if self.finished:
            return
        self.finished = True
        recorder = self.recorder
        if status not in (None, RunStatus.OK.value, RunStatus.ERROR.value):
            recorder.contract_error(f"run status {status!r} is not 'ok' or 'error'")
            status = None
        try:
            body: dict[str, Any] = {
                "event_id": new_id(),
                "type": "run_finish",
                "ts": now_iso(),
                "status": status or (RunStatus.ERROR.value if error is not None else RunStatus.OK.value),
            }
            if outcome is not None:
                body["outcome"] = bounded_summary(outcome, recorder.limits.max_summary_bytes)
            if error is not None:
                body["error"] = error_info(error, recorder.limits)
            recorder.submit(self.run_id, EVENT, body)
        except XRayContractError:
            raise
        except Exception as exc:
            recorder.internal_error(exc)

    def __enter__(self) -> Run:
        self._tokens.append(current_run_var.set(self))
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self._tokens:
            try:
                current_run_var.reset(self._tokens.pop())
            except ValueError:
                pass  # left in another context than entered: nothing to restore
        if exc is not None:
            self.finish(status=RunStatus.ERROR.value, error=exc)
        else:
            self.finish()

    async def __aenter__(self) -> Run:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)


def step(
    name: Any = None, step_type: str = StepType.CUSTOM.value, *, capture: str | None = None, id_field: str | None = None
) -> Any:
    """Decorate a function so that each call is a step of the current run (found through
    contextvars; outside a run the function simply runs). Use `current_step()` inside.
    `@step` alone names the step after the function, with type `custom`. `capture` and
    `id_field` are as for `Run.step`."""
    if callable(name):
        return step(None, step_type, capture=capture, id_field=id_field)(name)

    def decorate(fn: Callable[..., T]) -> Callable[..., T]:
        step_name = name or fn.__name__
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                run = current_run_var.get()
                if run is None:
                    return await fn(*args, **kwargs)
                async with Step(run, step_name, step_type, None, capture, id_field):
                    return await fn(*args, **kwargs)

            # For an async fn, T is its coroutine type, which is what the wrapper returns too.
            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            run = current_run_var.get()
            if run is None:
                return fn(*args, **kwargs)
            with Step(run, step_name, step_type, None, capture, id_field):
                return fn(*args, **kwargs)

        return wrapper

    return decorate
