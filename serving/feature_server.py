"""Feast's HTTP feature server for this environment, as deployed (`make feature-server`, and the
image's entry point where a cluster runs one).

    python -m serving.feature_server [--host 127.0.0.1] [--port 6566]

Writes the environment's feature_store.yaml (the settings the Dagster resource and the scoring
paths read: FEAST_ONLINE_STORE and FEAST_REGISTRY apply) and runs `feast serve` on it, tuned for
latency.
"""

import argparse
import os
import sys
from pathlib import Path

from features.store import SERVING_REGISTRY_CACHE_S, feast_settings, settings_from_environment

# `feast serve` defaults restart the worker every 1,000 requests (calls then wait ~1-2 s for a
# fresh worker), log every request, and rebuild every feature view in a background thread each
# 60 s (a 15-50 ms stall). Instead the registry is re-read on a request once its cache expires.
SERVE_OPTIONS = ["--max-requests", "0", "--no-access-log", "--registry_ttl_sec", "0"]


def write_config(folder: Path, home: Path) -> Path:
    """feature_store.yaml of the current environment (FEAST_REGISTRY, FEAST_ONLINE_STORE, else
    the embedded files under `home`) in `folder`."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "feature_store.yaml"
    settings = feast_settings(**settings_from_environment(home, SERVING_REGISTRY_CACHE_S))
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m serving.feature_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6566)
    args = parser.parse_args(argv)

    from settings.env import REPO_ROOT, fraud_home, prepare_process_environment

    prepare_process_environment()
    folder = write_config(fraud_home() / "feast" / "server", fraud_home()).parent
    feast = str(Path(sys.executable).parent / "feast")
    command = [feast, "--chdir", str(folder), "serve", "--host", args.host,
               "--port", str(args.port), *SERVE_OPTIONS]  # fmt: skip
    print(f"feature server on http://{args.host}:{args.port} ({' '.join(command)})", flush=True)
    # the configuration names this repository's offline store (features.delta_offline_store)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
    )
    os.execv(feast, command)


if __name__ == "__main__":
    main()
