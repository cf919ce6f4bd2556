"""The docs name what the code holds: each package README every module of its package, the
README's layout table every top-level folder of the repository."""

import subprocess

import pytest

from settings.env import REPO_ROOT

pytestmark = pytest.mark.unit


def _tracked_top_level() -> set[str]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return {path.split("/")[0] for path in listed if "/" in path and not path.startswith(".")}


PACKAGE_READMES = sorted(
    p for p in REPO_ROOT.glob("*/README.md") if p.parent.name in _tracked_top_level()
)


@pytest.mark.parametrize("readme", PACKAGE_READMES, ids=lambda p: p.parent.name)
def test_a_package_readme_names_every_module(readme):
    text = readme.read_text()
    modules = [p.name for p in readme.parent.glob("*.py") if p.name != "__init__.py"]
    assert modules, f"{readme} documents a folder without modules"
    unnamed = [m for m in modules if f"`{m}`" not in text]
    assert not unnamed, f"{readme.relative_to(REPO_ROOT)} does not name {unnamed}"


def test_the_layout_table_lists_every_top_level_folder():
    layout = (REPO_ROOT / "README.md").read_text().split("## Layout", 1)[1].split("\n## ", 1)[0]
    unlisted = [f for f in sorted(_tracked_top_level()) if f"`{f}/`" not in layout]
    assert not unlisted, f"README's layout table lacks {unlisted}"
