"""Whether the loop closed: the facts the demo saw after the drift (Dagster's runs and sensor
ticks, the registry, the scores), judged step by step."""

from collections.abc import Iterator
from dataclasses import dataclass

from assets import keys
from assets.registry import GATE_CHECK

GATE_STEP = keys.CHAMPION.to_python_identifier()  # the gate's step in the training job
FINISHED = ("SUCCESS", "FAILURE", "CANCELED")


@dataclass
class LoopFacts:
    """What the demo saw of the loop after the drift, each read from Dagster's runs and sensor
    ticks, the MLflow registry or the scores; None where it saw nothing."""

    champion_before: str | None = None
    drift_verdicts: str = "none reported"
    retrain_run: str | None = None  # the training_job run drift_retrain_sensor launched
    retrain_reason: str | None = None  # its fraud/trigger_reason tag
    retrain_status: str | None = None
    retrain_wait: str | None = None  # why waiting for it ended without a finished run
    failed_steps: tuple[str, ...] = ()
    gate_passed: bool | None = None
    gate_description: str | None = None
    champion_after: str | None = None
    bento_run: str | None = None  # champion_sensor's bento_job for champion_after
    bento_status: str | None = None
    bento_wait: str | None = None
    served_by: str | None = None  # what scored after the switch: the stream, or a batch day
    served_versions: tuple[str, ...] = ()  # the model versions those scores carry
    stopped: str | None = None  # the failure that ended the demo early


def _loop_steps(f: LoopFacts) -> Iterator[tuple[str, str | bool | None, str]]:
    """Each step of the loop in order: (name, what was seen or a falsy value, why it was not)."""
    run = f"training_job {(f.retrain_run or '')[:8]}"
    yield (
        "drift alarm",
        f.retrain_run and f"drift_retrain_sensor launched {run}: {f.retrain_reason}",
        f"no drift alarm: drift_retrain_sensor launched no training_job "
        f"({f.retrain_wait or 'none seen'}; drift reports {f.drift_verdicts})",
    )
    if f.retrain_status not in FINISHED:
        why = f"{run} is still {f.retrain_status}: {f.retrain_wait}"
    elif set(f.failed_steps) - {GATE_STEP}:
        why = f"{run} failed before the gate, at {', '.join(sorted(f.failed_steps))}"
    else:
        why = f"{run} ended {f.retrain_status} without a verdict of the {GATE_CHECK}"
    reached = f.retrain_status in FINISHED and not set(f.failed_steps) - {GATE_STEP}
    yield "retrain", reached and f.gate_passed is not None and f"{run} ran up to the gate", why
    before, after, gate = f.champion_before, f.champion_after, f.gate_description
    yield (
        "new champion",
        after not in (None, before) and f"champion v{before} -> v{after} ({gate})",
        f"the gate kept champion v{before}: {gate}"
        if not f.gate_passed
        else f"the gate passed ({gate}) but alias champion is on v{after}",
    )
    bento = f"bento_job {(f.bento_run or '')[:8]}"
    yield (
        "bento",
        f.bento_status == "SUCCESS" and f"champion_sensor built v{after}'s bento ({bento})",
        f"{bento} of v{after} ended {f.bento_status}"
        if f.bento_status in FINISHED
        else f"champion_sensor built no bento of v{after} ({f.bento_wait})",
    )
    versions = ", ".join(f"v{v}" for v in f.served_versions)
    yield (
        "serving",
        f.served_versions == (after,) and f"{f.served_by} scored by v{after}",
        f"{f.served_by} scored by {versions}, not v{after}"
        if f.served_versions
        else f"{f.served_by or 'serving'}: nothing scored after the switch",
    )


def loop_verdict(facts: LoopFacts) -> tuple[bool, list[str]]:
    """Whether the loop closed, and lines saying so: each step seen, then the first one that
    was not and why."""
    lines = []
    for step, seen, why_not in _loop_steps(facts):
        if not seen:
            why = f"the demo stopped: {facts.stopped}" if facts.stopped else why_not
            return False, ["loop NOT closed", *lines, f"  NO  {step:12}  {why}"]
        lines.append(f"  ok  {step:12}  {seen}")
    return True, ["loop closed", *lines]
