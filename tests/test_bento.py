"""The champion's bento: built by `scoring/bento` (once per model version), rebuilt by the
champion sensor when the alias moves; the bentofile's pins follow the lock."""

import dagster as dg
import pytest
import yaml

from assets.scoring import bento
from resources import build_resources
from sensors.champion import champion_sensor
from tests.support.champions import register_champion


def _evaluate_sensor():
    context = dg.build_sensor_context(resources={"mlflow": build_resources()["mlflow"]})
    return champion_sensor(context)


@pytest.mark.integration
def test_the_bento_is_built_for_the_champion_once_and_the_sensor_follows_the_alias(fraud_home):
    assert isinstance(_evaluate_sensor(), dg.SkipReason)  # no champion yet
    build_resources()["mlflow"].activate()
    version = register_champion()
    request = _evaluate_sensor()
    assert request.run_key == f"champion-v{version}"

    first = dg.materialize([bento], instance=dg.DagsterInstance.ephemeral())
    meta = first.asset_materializations_for_node("scoring__bento")[0].metadata
    from serving.bento import code_version

    tag = f"fraud_scoring:v{version}-{code_version()}"
    assert meta["bento_tag"].value == tag and meta["built"].value
    stored = fraud_home / "bentoml" / "bentos" / "fraud_scoring" / tag.split(":")[1]
    assert (stored / "bento.yaml").exists()
    assert f"fraud-detector:v{version}" in (stored / "bento.yaml").read_text()
    again = dg.materialize([bento], instance=dg.DagsterInstance.ephemeral())
    assert not again.asset_materializations_for_node("scoring__bento")[0].metadata["built"].value

    newer = register_champion()
    assert _evaluate_sensor().run_key == f"champion-v{newer}" != request.run_key


@pytest.mark.unit
def test_the_bentofile_pins_what_requirements_lock_pins():
    from serving.bento import BENTOFILE, REPO_ROOT

    lock = dict(
        line.split("==", 1)
        for line in (REPO_ROOT / "requirements.lock").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    pins = yaml.safe_load(BENTOFILE.read_text())["python"]["packages"]
    assert pins and all(lock[name] == version for name, version in (p.split("==") for p in pins))


@pytest.mark.unit
def test_the_bento_ships_every_package_serving_imports():
    import grimp

    from serving.bento import BENTOFILE

    packages = ["serving", "features", "ml", "lakehouse", "settings", "monitoring", "resources"]
    graph = grimp.build_graph(*packages)
    needed = {m.split(".")[0] for m in graph.find_upstream_modules("serving", as_package=True)}
    shipped = {p.split("/")[0] for p in yaml.safe_load(BENTOFILE.read_text())["include"]}
    assert needed and needed | {"serving"} <= shipped, f"the bento lacks {needed - shipped}"
    assert not {"resources", "monitoring"} & shipped  # no Dagster layer, nothing unused
