"""Hot swap in one process: the follower moves to the alias's version when it moves, and keeps
the version in service when a load fails or the registry is down."""

import time

import pytest

from serving.model_follow import ModelFollower

pytestmark = pytest.mark.unit


class _Scorer:
    def __init__(self, version: str):
        self.model_version = version


class _Registry:
    """The alias's version, as a test moves it; `down` makes every look fail."""

    def __init__(self, version: str | None):
        self.version, self.down, self.looks = version, False, 0

    def __call__(self) -> str | None:
        self.looks += 1
        if self.down:
            raise ConnectionError("registry unreachable")
        return self.version


def test_the_follower_swaps_only_when_the_alias_moves():
    registry, loads = _Registry("1"), []

    def load(version):
        loads.append(version)
        return _Scorer(version)

    follower = ModelFollower(_Scorer("1"), registry, load)
    assert not follower.check() and follower.current.model_version == "1" and loads == []
    registry.version = "2"
    assert follower.check() and follower.current.model_version == "2"
    assert not follower.check() and loads == ["2"]  # loaded once
    assert [(old, new) for old, new, _ in follower.swaps] == [("1", "2")]
    registry.version = None  # the alias was deleted: keep serving what is loaded
    assert not follower.check() and follower.current.model_version == "2"


def test_a_version_that_fails_to_load_leaves_the_one_in_service_and_is_not_retried_at_once():
    registry, tries = _Registry("2"), []

    def load(version):
        tries.append(version)
        raise OSError("artifact missing")

    follower = ModelFollower(_Scorer("1"), registry, load)
    assert not follower.check() and not follower.check()
    assert follower.current.model_version == "1" and tries == ["2"]
    registry.version = "3"  # a different version is tried at once
    assert not follower.check() and tries == ["2", "3"]


def test_a_registry_outage_keeps_the_thread_following_and_the_version_in_service():
    registry = _Registry("1")
    registry.down = True
    follower = ModelFollower(_Scorer("1"), registry, _Scorer, every_s=0.01).start()
    try:
        deadline = time.monotonic() + 5
        while registry.looks < 5:
            assert time.monotonic() < deadline, "the follower stopped looking"
            time.sleep(0.01)
        assert follower.current.model_version == "1"
        registry.down, registry.version = False, "2"
        while follower.current.model_version != "2":
            assert time.monotonic() < deadline, "the follower did not swap after the outage"
            time.sleep(0.01)
    finally:
        follower.stop()
