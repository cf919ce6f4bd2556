"""The facts of a loop that closed, as `make demo` observes them (demo.verdict.LoopFacts)."""

from demo.verdict import LoopFacts

CLOSED = LoopFacts(
    champion_before="1",
    drift_verdicts="11-20 no alarm, 11-29 ALARM",
    retrain_run="1a2b3c4d-run",
    retrain_reason="importance-weighted input drift 0.41 >= 0.25 on 2026-11-29",
    retrain_status="SUCCESS",
    gate_passed=True,
    gate_description="v2 is better than champion v1 with 95% confidence",
    champion_after="2",
    bento_run="5e6f7a8b-run",
    bento_status="SUCCESS",
    served_by="the stream (250 scored)",
    served_versions=("2",),
)
