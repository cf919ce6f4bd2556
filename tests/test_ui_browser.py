"""The Dagster UI in a real browser (Playwright driving Debian's Chromium, headless): `dagster dev`
shows the asset graph with its groups, a materialization of silver launched from the UI succeeds,
and the UI shows its checks passed. Screenshots go to .test-artifacts/."""

import datetime as dt
import shutil
import time
import urllib.request

import dagster as dg
import pytest

from demo.dagster_processes import DagsterProcess
from demo.services import ensure_chromium
from settings.env import REPO_ROOT, prepare_process_environment
from tests.support.network import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.spark]
DAY = dt.date(2026, 3, 1)
GROUPS = ["bronze", "silver", "gold", "features", "training", "registry", "scoring", "monitoring"]
ARTIFACTS = REPO_ROOT / ".test-artifacts"


@pytest.fixture
def dagster_dev(tmp_path, monkeypatch):
    """`dagster dev` on a fresh instance whose bronze holds one simulated day: its URL."""
    from definitions import defs
    from resources import build_resources
    from simulator.landing import generate

    home, dagster_home = tmp_path / "fraud_home", tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copy(REPO_ROOT / "deploy" / "local" / "dagster.yaml", dagster_home / "dagster.yaml")
    monkeypatch.setenv("FRAUD_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    prepare_process_environment()
    generate(home / "landing", days=1, customers=100, seed=3, start=DAY)
    with dg.DagsterInstance.get() as instance:
        bronze = defs.resolve_job_def("bronze_job").execute_in_process(
            instance=instance, partition_key=DAY.isoformat(), resources=build_resources()
        )
    assert bronze.success
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    arguments = ["dagster", "dev", "-w", "workspace.yaml", "-p", str(port), "-h", "127.0.0.1"]
    with DagsterProcess(arguments, tmp_path / "dev.log") as dev:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/server_info", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or not dev.alive():
                    pytest.fail(f"dagster dev did not answer:\n{dev.log.read_text()}")
                time.sleep(1)
        yield url


def test_the_ui_shows_the_groups_and_materializes_silver_with_passing_checks(dagster_dev):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=ensure_chromium(), headless=True)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(60_000)

        page.goto(f"{dagster_dev}/asset-groups")
        for group in GROUPS:  # the graph's group boxes (and the sidebar's list)
            expect(page.get_by_text(group, exact=True).first).to_be_visible()
        page.screenshot(path=ARTIFACTS / "dagster-ui-asset-graph.png")

        page.goto(f"{dagster_dev}/assets/silver/transactions")
        page.get_by_role("button", name="Materialize…").click()
        # silver is one multi-asset: the UI says the other two tables come along.
        page.get_by_role("button", name="Confirm").click()
        page.get_by_text("Show all partitions").click()
        partitions = page.locator("[role=dialog] input[type=text]").first
        partitions.fill(DAY.isoformat())
        partitions.press("Enter")
        page.get_by_role("button", name="Launch 1 run").click()
        page.get_by_text("View", exact=True).click()  # in the toast of the launched run
        expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=240_000)

        page.goto(f"{dagster_dev}/assets/silver/transactions?view=checks")
        for check in ("soda_contract", "reconciles_with_bronze"):
            expect(page.get_by_text(check).first).to_be_visible()
        expect(page.get_by_text("Succeeded")).to_have_count(2)
        page.screenshot(path=ARTIFACTS / "dagster-ui-silver-checks.png")
        browser.close()
