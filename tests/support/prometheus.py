"""A real Prometheus (Debian's package) started by a test: it scrapes the given targets every
second; `series` asks it which series it holds."""

import contextlib
import json
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from demo.services import ensure_prometheus
from tests.support.network import free_port


@contextlib.contextmanager
def running_prometheus(folder: Path, jobs: dict[str, str]):
    """Prometheus scraping `jobs` (job name -> host:port, path /metrics): its base URL."""
    prometheus = ensure_prometheus()["prometheus"]
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [target]}]}
            for job, target in jobs.items()
        ],
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    output = (folder / "prometheus.log").open("wb")
    server = subprocess.Popen(
        [prometheus, f"--config.file={folder / 'prometheus.yml'}",
         f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, (folder / "prometheus.log").read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "Prometheus was not ready in 30 s"
            time.sleep(0.2)
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        output.close()


def query(url: str, promql: str) -> list[dict]:
    """The result vector of an instant query."""
    address = f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(address, timeout=10) as answer:
        return json.loads(answer.read())["data"]["result"]


def targets_up(url: str) -> dict[str, str]:
    """Each scraped job's health (`up`, `down`, `unknown`) and its last error, if any."""
    with urllib.request.urlopen(f"{url}/api/v1/targets", timeout=10) as answer:
        active = json.loads(answer.read())["data"]["activeTargets"]
    return {t["labels"]["job"]: t["health"] + (f": {t['lastError']}" if t["lastError"] else "")
            for t in active}  # fmt: skip
