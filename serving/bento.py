"""The champion's bento: the registry's champion copied into BentoML's model store, and a bento
of the scoring service pinned to it (`fraud_scoring:v<registry version>-<code digest>`).

    python -m serving.bento build         # prints {"model_tag", "bento_tag", "built"} as JSON
    python -m serving.bento serve [PORT]  # builds if needed, then `bentoml serve` of the bento

BentoML reads BENTOML_HOME once per process, so callers that change it (a Dagster step, a test)
build through `build_in_subprocess`."""

import json
import os
import subprocess
import sys
from pathlib import Path

from settings.env import REPO_ROOT

BENTOFILE = REPO_ROOT / "serving" / "bentofile.yaml"
BENTO_NAME = "fraud_scoring"


def code_version() -> str:
    """A digest of what the bento includes (the bentofile and the files it names): a bento is
    rebuilt when the code changes, not only when the champion does."""
    import hashlib

    import yaml

    patterns = yaml.safe_load(BENTOFILE.read_text())["include"]
    files = sorted({path for pattern in patterns for path in REPO_ROOT.glob(pattern)})
    digest = hashlib.sha256(BENTOFILE.read_bytes())
    for path in files:
        digest.update(str(path.relative_to(REPO_ROOT)).encode() + path.read_bytes())
    return digest.hexdigest()[:10]


def build() -> dict:
    """Export the champion (if new) and build its bento (if not built yet)."""
    import bentoml
    import mlflow
    from bentoml.exceptions import NotFound

    from serving.champion import export_champion
    from settings.env import mlflow_tracking_uri, prepare_process_environment

    prepare_process_environment()
    mlflow.set_tracking_uri(mlflow_tracking_uri())
    model_tag, _ = export_champion()
    bento_tag = f"{BENTO_NAME}:{model_tag.split(':')[1]}-{code_version()}"
    try:
        bentoml.bentos.get(bento_tag)
        return {"model_tag": model_tag, "bento_tag": bento_tag, "built": False}
    except NotFound:
        pass
    bentoml.bentos.build_bentofile(
        str(BENTOFILE),
        version=bento_tag.split(":")[1],
        build_ctx=str(REPO_ROOT),
        labels={"model": model_tag},
        args={"model_tag": model_tag},
    )
    return {"model_tag": model_tag, "bento_tag": bento_tag, "built": True}


def build_in_subprocess(env: dict | None = None) -> dict:
    """`build()` in a fresh interpreter (BentoML then reads this environment's BENTOML_HOME)."""
    done = subprocess.run(
        [sys.executable, "-m", "serving.bento", "build"],
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise RuntimeError(f"bento build failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("build", "serve"):
        print("usage: python -m serving.bento build | serve [PORT]", file=sys.stderr)
        return 2
    built = build()
    print(json.dumps(built), flush=True)
    if argv[0] == "build":
        return 0
    port = argv[1] if len(argv) > 1 else "3001"
    print(f"serving {built['bento_tag']} on http://localhost:{port} (API docs at /)", flush=True)
    bentoml = str(Path(sys.executable).parent / "bentoml")
    os.execv(bentoml, [bentoml, "serve", built["bento_tag"], "--port", port])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
