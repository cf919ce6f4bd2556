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


def test_the_fault_table_names_tests_that_exist_and_every_fault_test_file():
    import re

    readme = (REPO_ROOT / "README.md").read_text()
    table = readme.split("## When things break", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"`(test_\w+\.py)(?:::(\w+))?`", table)
    assert named, "the fault table names no test"
    for module, test in named:
        source = (REPO_ROOT / "tests" / module).read_text()
        assert not test or f"def {test}(" in source, f"{module}::{test} does not exist"
    fault_files = {
        p.name
        for p in (REPO_ROOT / "tests").glob("test_*.py")
        if re.search(r"pytest\.mark\.faults\b", p.read_text())
    }
    missing = fault_files - {module for module, _ in named}
    assert not missing, f"the fault table does not mention {sorted(missing)}"
