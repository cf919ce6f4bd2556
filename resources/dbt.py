"""The dbt project (dbt-duckdb) that builds the gold layer, and the CLI resource that runs it."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject
from packaging import version

from settings.env import REPO_ROOT

DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"


def dbt_executable() -> str:
    """dbt from its own venv inside this one (`.venv/dbt`, made by `make venv`); else
    DBT_EXECUTABLE or dbt on PATH. Keeping dbt-core out of this interpreter keeps the
    definitions fast to load."""
    own_venv = Path(sys.prefix) / "dbt" / "bin" / "dbt"
    if own_venv.exists():
        return str(own_venv)
    return os.environ.get("DBT_EXECUTABLE") or shutil.which("dbt") or "dbt"


class IsolatedDbtCliResource(DbtCliResource):
    """DbtCliResource for a dbt-core installed in another venv: its version is read from that
    venv's files (`dbt --version` also asks PyPI for the latest release), and no dbt adapter
    is created in this interpreter, where dbt-core is absent by design."""

    @property
    def _cli_version(self) -> version.Version:
        venv = Path(self.dbt_executable).resolve().parent.parent
        for dist in venv.glob("lib/python*/site-packages/dbt_core-*.dist-info"):
            return version.parse(dist.name.removeprefix("dbt_core-").removesuffix(".dist-info"))
        return super()._cli_version

    def _initialize_dbt_core_adapter(self, args):
        return None


def load_dbt_project() -> DbtProject:
    """The project with a parsed manifest; `dbt parse` runs once if the manifest is missing."""
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
    if not project.manifest_path.exists():
        subprocess.run(
            [dbt_executable(), "parse", "--quiet"],
            cwd=DBT_PROJECT_DIR,
            env={**os.environ, "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR)},
            check=True,
        )
    return project


def dbt_cli(project: DbtProject) -> DbtCliResource:
    return IsolatedDbtCliResource(
        project_dir=project, profiles_dir=str(DBT_PROJECT_DIR), dbt_executable=dbt_executable()
    )
