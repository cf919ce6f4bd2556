"""`make demo`'s verdict over the loop's observed facts, and its output: stage lines on the
terminal, everything else in the log."""

import dataclasses
import os
import subprocess
import sys
import textwrap

import pytest

from demo.runner import _figures
from demo.verdict import GATE_STEP, loop_verdict
from settings.env import REPO_ROOT
from tests.support.loop_facts import CLOSED

pytestmark = pytest.mark.unit
REFUSED = {
    "retrain_status": "FAILURE",
    "failed_steps": (GATE_STEP,),
    "gate_passed": False,
    "gate_description": "v2 not promoted (inconclusive vs champion v1): PR-AUC +0.010 "
    "[−0.060, +0.080] below −0.02",
    "champion_after": "1",
}
STEPS = ["drift alarm", "retrain", "new champion", "bento", "serving"]
# Each way a step can be missing: (step, the facts that differ from CLOSED, the reason named).
MISSING = {
    "no sensor run": (
        "drift alarm",
        {"retrain_run": None, "retrain_wait": "its tick skipped: no report crossed a threshold"},
        "no drift alarm: drift_retrain_sensor launched no training_job (its tick skipped: no "
        "report crossed a threshold; drift reports 11-20 no alarm, 11-29 ALARM)",
    ),
    "retrain unfinished": (
        "retrain",
        {"retrain_status": "STARTED", "retrain_wait": "still waiting after 8 minutes"},
        "training_job 1a2b3c4d is still STARTED: still waiting after 8 minutes",
    ),
    "retrain failed before the gate": (
        "retrain",
        {"retrain_status": "FAILURE", "failed_steps": ("training__tuned_model",)},
        "failed before the gate, at training__tuned_model",
    ),
    "retrain without a gate verdict": (
        "retrain",
        {"retrain_status": "CANCELED", "gate_passed": None},
        "training_job 1a2b3c4d ended CANCELED without a verdict of the promotion_gate",
    ),
    "gate refused": (
        "new champion",
        REFUSED,
        "the gate kept champion v1: v2 not promoted (inconclusive vs champion v1)",
    ),
    "gate passed, alias unmoved": (
        "new champion",
        {"champion_after": "1"},
        "the gate passed (v2 is better than champion v1 with 95% confidence) but alias champion "
        "is on v1",
    ),
    "no bento": (
        "bento",
        {"bento_run": None, "bento_status": None, "bento_wait": "still waiting after 8 minutes"},
        "champion_sensor built no bento of v2 (still waiting after 8 minutes)",
    ),
    "bento failed": (
        "bento",
        {"bento_status": "FAILURE"},
        "bento_job 5e6f7a8b of v2 ended FAILURE",
    ),
    "served by the old model": (
        "serving",
        {"served_by": "the batch scores of 2026-11-29", "served_versions": ("1",)},
        "the batch scores of 2026-11-29 scored by v1, not v2",
    ),
    "nothing served": (
        "serving",
        {"served_versions": ()},
        "the stream (250 scored): nothing scored after the switch",
    ),
    "stopped before the drift": (
        "drift alarm",
        {"retrain_run": None, "stopped": "stage 2/10 (daily_job): daily_job failed at gold"},
        "the demo stopped: stage 2/10 (daily_job): daily_job failed at gold",
    ),
    "stopped while serving": (
        "serving",
        {"served_by": None, "served_versions": (), "stopped": "stream_drain_job failed"},
        "the demo stopped: stream_drain_job failed",
    ),
}


def test_all_steps_seen_close_the_loop():
    closed, lines = loop_verdict(CLOSED)
    assert closed
    assert lines == [
        "loop closed",
        "  ok  drift alarm   drift_retrain_sensor launched training_job 1a2b3c4d: "
        "importance-weighted input drift 0.41 >= 0.25 on 2026-11-29",
        "  ok  retrain       training_job 1a2b3c4d ran up to the gate",
        "  ok  new champion  champion v1 -> v2 (v2 is better than champion v1 with 95% confidence)",
        "  ok  bento         champion_sensor built v2's bento (bento_job 5e6f7a8b)",
        "  ok  serving       the stream (250 scored) scored by v2",
    ]


@pytest.mark.parametrize("case", MISSING)
def test_a_missing_step_is_named_with_its_reason(case):
    step, differs, reason = MISSING[case]
    closed, lines = loop_verdict(dataclasses.replace(CLOSED, **differs))
    assert not closed
    assert lines[0] == "loop NOT closed"
    assert lines[-1].startswith(f"  NO  {step:12}  ") and reason in lines[-1], lines[-1]
    assert [line[6:18].strip() for line in lines[1:-1]] == STEPS[: STEPS.index(step)]


def test_the_gate_refusal_verdict_reads_as_the_terminal_shows_it():
    closed, lines = loop_verdict(dataclasses.replace(CLOSED, **REFUSED))
    assert not closed
    assert lines == [
        "loop NOT closed",
        "  ok  drift alarm   drift_retrain_sensor launched training_job 1a2b3c4d: "
        "importance-weighted input drift 0.41 >= 0.25 on 2026-11-29",
        "  ok  retrain       training_job 1a2b3c4d ran up to the gate",
        "  NO  new champion  the gate kept champion v1: v2 not promoted (inconclusive vs champion "
        "v1): PR-AUC +0.010 [−0.060, +0.080] below −0.02",
    ]


def test_a_drift_report_prints_the_figures_its_metadata_gives():
    quiet = {"dagster/row_count": 2000, "alarm": False, "alarm_reasons": [],
             "prediction_drift": 0.03, "prediction_drift_threshold": 0.1,
             "drifted_columns": ["amount_usd"], "report": "file:///r.html",
             "duration_s": 9.8}  # fmt: skip
    assert _figures(quiet) == (
        "rows 2,000, alarm False, alarm_reasons none, prediction_drift 0.03 (threshold 0.1), "
        "drifted_columns amount_usd"
    )
    alarm = {"dagster/row_count": 2000, "alarm": True, "alarm_reasons": ["weighted drift 0.31"],
             "weighted_drift": 0.31, "weighted_drift_threshold": 0.25,
             "sustained_drift_threshold": 0.15, "fraud_cards_missed": 3,
             "reference_missed_share": 0.07, "missed_fraud_alpha": 0.001, "drift_share": 0.2,
             "drift_share_threshold": 0.25, "drifted_columns": ["a", "b", "c", "d"],
             "columns": "| column |"}  # fmt: skip
    assert _figures(alarm) == (
        "rows 2,000, alarm True, alarm_reasons weighted drift 0.31, weighted_drift 0.31 "
        "(threshold 0.25), drift_share 0.2 (threshold 0.25), drifted_columns 4"
    )
    assert _figures({"dagster/row_count": 0, "status": "no score was logged"}) == "rows 0"


# A child process runs the demo's main with a fake loop making the noise the real one makes.
FAKE_DEMO = textwrap.dedent(
    """
    import logging, subprocess, sys, warnings

    import demo.runner as demo
    from tests.support.loop_facts import CLOSED

    def fake_loop(args, stages, facts):
        stages.next("a fake stage")
        stages.say("progress of the fake stage")
        print("noise on stdout")
        print("noise on stderr", file=sys.stderr)
        warnings.warn("a library warning")
        logging.getLogger("somelib").warning("a library log line")
        subprocess.run(["sh", "-c", "echo child stdout; echo child stderr >&2"], check=True)
        if sys.argv[1] == "fails":
            raise RuntimeError("boom in the fake stage")
        vars(facts).update(vars(CLOSED))
        return ["a summary line"]

    demo.run_demo = fake_loop
    sys.exit(demo.main(["--setup-log", sys.argv[2]]))
    """
)
NOISE = ["noise on stdout", "noise on stderr", "a library warning", "a library log line",
         "child stdout", "child stderr", "pip's install output"]  # fmt: skip


def _fake_demo(tmp_path, outcome: str) -> tuple[subprocess.CompletedProcess, str]:
    home = tmp_path / "fraud_home"
    setup_log = tmp_path / "setup.log"
    setup_log.write_text("pip's install output\n")
    (home / "demo").mkdir(parents=True)
    (home / "demo" / "demo.log").write_text("a previous demo's log\n")
    env = {**os.environ, "FRAUD_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(
        [sys.executable, "-c", FAKE_DEMO, outcome, str(setup_log)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert not setup_log.exists()
    return done, (home / "demo" / "demo.log").read_text()


def test_the_terminal_shows_the_stages_and_the_verdict_and_the_log_the_rest(tmp_path):
    done, log = _fake_demo(tmp_path, "closes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    terminal = done.stdout
    log_path = tmp_path / "fraud_home" / "demo" / "demo.log"
    shown = ["[1/10] a fake stage", "      progress of the fake stage", "a summary line",
             f"log: {log_path}", "loop closed"]  # fmt: skip
    for line in shown:
        assert line in terminal
        assert line in log
    assert terminal.rstrip().endswith("  ok  serving       the stream (250 scored) scored by v2")
    assert not [noise for noise in NOISE if noise in terminal]
    assert [noise for noise in NOISE if noise not in log] == []
    assert "a previous demo's log" not in log
    assert len(terminal.splitlines()) < 30


def test_a_failure_is_named_on_the_terminal_and_detailed_in_the_log(tmp_path):
    done, log = _fake_demo(tmp_path, "fails")
    assert done.returncode == 1
    assert done.stderr == ""
    assert "loop NOT closed" in done.stdout
    assert (
        "  NO  drift alarm   the demo stopped: stage 1/10 (a fake stage): RuntimeError: boom in "
        "the fake stage"
    ) in done.stdout
    assert "Traceback" not in done.stdout
    assert "Traceback" in log and "in fake_loop" in log
