"""What a real pipeline of the evaluation provides, and how one run of it is judged.

A real pipeline is production-style code built on a real library over real data that ships inside
a PyPI package (no download at run time). It records its steps through the X-Ray SDK like any
user's pipeline. Its bugs are planted in its code, never in a metric: each bug is a flag the code
checks at the place the bug lives. Ground truth comes from the data: a run is wrong when its answer
is not the one the data says, and a wrong run is its bug's when the same case, run again with that
bug fixed (through a disabled client, so nothing is recorded), gives the right answer.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import xray_sdk


@dataclass(frozen=True)
class Bug:
    """A bug planted in a pipeline's code."""

    name: str
    # The step whose code holds the bug: what `explain` should name as the cause.
    step: str
    # filter_rule, upstream_recall, segment_model or error_path.
    kind: str
    description: str


@dataclass(frozen=True)
class Outcome:
    """What one call of a pipeline produced."""

    run_id: str
    answer: Any
    # A step raised and ended the run: never a correct run, whatever its (None) answer.
    failed: bool = False


class RealPipeline(Protocol):
    """A pipeline of the evaluation."""

    # The pipeline's name in X-Ray (the evaluation adds a suffix per bug and seed).
    name: str
    # What the pipeline does, in a sentence, and which library and data it uses.
    description: str
    bugs: tuple[Bug, ...]

    def cases(self, rng: random.Random, n: int) -> list[Any]:
        """`n` inputs drawn from the package's data, as the pipeline would receive them."""
        ...

    def run(self, client: xray_sdk.Client, pipeline: str, case: Any, bugs: frozenset[str]) -> Outcome:
        """Run the pipeline on `case` with the named bugs present, recorded under `pipeline`.
        Never raises: a step that raises ends the run with an error and a None answer."""
        ...

    def correct(self, case: Any, answer: Any) -> bool:
        """Whether `answer` is right for `case`, by the data."""
        ...


def record(
    client: xray_sdk.Client,
    pipeline: str,
    entity: str,
    tags: Mapping[str, str],
    resolve: Callable[[xray_sdk.Run], Any],
    outcome_key: str,
) -> Outcome:
    """Run `resolve` inside a run recorded under `pipeline`, and finish the run with
    `{outcome_key: answer}`. A step that raises ends the run with its error (the SDK records it as
    the run leaves its block) and the call with a failed, answerless outcome: never raises."""
    run = client.start_run(pipeline, entity=entity, tags=tags)
    try:
        with run:
            answer = resolve(run)
            run.finish(outcome={outcome_key: answer})
    except Exception:
        return Outcome(run.run_id, None, failed=True)
    return Outcome(run.run_id, answer)
