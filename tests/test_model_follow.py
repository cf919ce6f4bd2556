"""The lineup a serving process follows: it moves when the registry does (champion, a canary
rollout, a shadow), keeps what is in service when a load fails or the registry is down; a
canary decides its share of batches and the stable version answers the batches it fails on;
the shadow scores what was answered, on the same features."""

import dataclasses
import time

import numpy as np
import pyarrow as pa
import pytest

from serving.metrics import ServingMetrics
from serving.model_follow import Lineup, ModelFollower, Wanted, _share
from serving.scoring import Scored
from serving.shadow import ShadowScoring

pytestmark = pytest.mark.unit


class _Scorer:
    """Scores every row `score` (or raises `fails`), as version `version`."""

    def __init__(self, version: str, score: float = 0.1, fails: Exception | None = None):
        self.model_version, self.inputs = version, ["amount_usd"]
        self._score, self.fails, self.rescored = score, fails, []

    def score(self, rows) -> Scored:
        if self.fails is not None:
            raise self.fails
        n = len(rows)
        none = pa.array([[]] * n, pa.list_(pa.string()))
        return self.rescore(Scored({"amount_usd": np.ones(n)}, np.zeros(n),
                                   np.array(["approve"] * n), none, False, "?"))  # fmt: skip

    def rescore(self, scored: Scored, explain: bool = True) -> Scored:
        self.rescored.append(scored)
        n = len(scored.frame["amount_usd"])
        return dataclasses.replace(scored, scores=np.full(n, self._score),
                                   model_version=self.model_version)  # fmt: skip


class _Registry:
    """What the registry wants, as a test sets it; `down` makes every look fail."""

    def __init__(self, wanted: Wanted):
        self.wanted, self.down, self.looks = wanted, False, 0

    def __call__(self) -> Wanted:
        self.looks += 1
        if self.down:
            raise ConnectionError("registry unreachable")
        return self.wanted


def test_the_follower_swaps_only_when_the_registry_moves():
    registry, loads = _Registry(Wanted("1")), []

    def load(version):
        loads.append(version)
        return _Scorer(version)

    follower = ModelFollower(_Scorer("1"), registry, load)
    assert not follower.check() and follower.current.model_version == "1" and loads == []
    registry.wanted = Wanted("2")
    assert follower.check() and follower.current.model_version == "2"
    assert not follower.check() and loads == ["2"]  # loaded once
    assert [(old.champion, new.champion) for old, new, _ in follower.swaps] == [("1", "2")]
    registry.wanted = Wanted(None)  # the alias was deleted: keep serving what is loaded
    assert not follower.check() and follower.current.model_version == "2"


def test_a_canary_rollout_holds_both_versions_and_reuses_what_is_loaded():
    registry, loads = _Registry(Wanted("1")), []

    def load(version):
        loads.append(version)
        return _Scorer(version)

    follower = ModelFollower(_Scorer("1"), registry, load)
    registry.wanted = Wanted("2", previous="1", share=0.1, shadow="3")
    assert follower.check()
    lineup = follower.current
    assert lineup.roles == {"champion": "2", "stable": "1", "shadow": "3"} and lineup.share == 0.1
    assert loads == ["2", "3"]  # v1 was in service already
    registry.wanted = Wanted("2")  # the rollout completed, the shadow is off
    assert follower.check() and follower.current.roles == {"champion": "2", "stable": None,
                                                           "shadow": None}  # fmt: skip
    assert loads == ["2", "3"]


def test_a_version_that_fails_to_load_leaves_the_lineup_and_is_not_retried_at_once():
    registry, tries = _Registry(Wanted("2")), []

    def load(version):
        tries.append(version)
        raise OSError("artifact missing")

    follower = ModelFollower(_Scorer("1"), registry, load)
    assert not follower.check() and not follower.check()
    assert follower.current.model_version == "1" and tries == ["2"]
    registry.wanted = Wanted("3")  # a different version is tried at once
    assert not follower.check() and tries == ["2", "3"]


def test_a_shadow_that_fails_to_load_is_left_out_and_the_champion_moves_all_the_same():
    def load(version):
        if version == "9":
            raise OSError("artifact missing")
        return _Scorer(version)

    follower = ModelFollower(_Scorer("1"), _Registry(Wanted("2", shadow="9")), load)
    assert follower.check() and follower.current.roles["champion"] == "2"
    assert follower.current.shadow is None


def test_a_registry_outage_keeps_the_thread_following_and_the_lineup_in_service():
    registry = _Registry(Wanted("1"))
    registry.down = True
    follower = ModelFollower(_Scorer("1"), registry, _Scorer, every_s=0.01).start()
    try:
        deadline = time.monotonic() + 5
        while registry.looks < 5:
            assert time.monotonic() < deadline, "the follower stopped looking"
            time.sleep(0.01)
        assert follower.current.model_version == "1"
        registry.down, registry.wanted = False, Wanted("2")
        while follower.current.model_version != "2":
            assert time.monotonic() < deadline, "the follower did not swap after the outage"
            time.sleep(0.01)
    finally:
        follower.stop()


def test_a_canary_decides_its_share_of_batches_and_the_stable_version_the_rest():
    lineup = Lineup(_Scorer("2", score=0.2), stable=_Scorer("1", score=0.1), share=0.1)
    draws = iter(np.random.default_rng(3).random(2000))
    scored = [lineup.score([{}], pick=lambda: next(draws)) for _ in range(2000)]
    canary = [s for s in scored if s.route == "canary"]
    assert {s.model_version for s in canary} == {"2"} and {s.scores[0] for s in canary} == {0.2}
    assert {s.model_version for s in scored if s.route == "stable"} == {"1"}
    assert 0.08 < len(canary) / len(scored) < 0.12 and all(s.error is None for s in scored)


@pytest.mark.parametrize("broken", [_Scorer("2", fails=RuntimeError("no weights")),
                                    _Scorer("2", score=float("nan"))])  # fmt: skip
def test_a_canary_that_fails_is_answered_for_by_the_stable_version_and_the_failure_kept(broken):
    lineup = Lineup(broken, stable=_Scorer("1", score=0.1), share=1.0 - 1e-9)
    scored = lineup.score([{}, {}], pick=lambda: 0.0)
    assert scored.model_version == "1" and list(scored.scores) == [0.1, 0.1]
    assert scored.route == "canary" and scored.error.startswith("canary v2 failed")


def test_the_shadow_scores_the_answered_features_and_never_the_model_that_answered():
    champion, shadow = _Scorer("2", score=0.2), _Scorer("3", score=0.7)
    lineup = Lineup(champion, shadow=shadow)
    answered = lineup.score([{}, {}, {}])
    shadowed = lineup.shadow_scores(answered)
    assert shadowed.model_version == "3" and list(shadowed.scores) == [0.7] * 3
    assert shadow.rescored[-1].frame is answered.frame  # the same features, no second lookup
    assert list(answered.scores) == [0.2] * 3  # the answer is untouched
    assert Lineup(champion, shadow=_Scorer("2")).shadow_scores(answered) is None


@pytest.mark.parametrize(("tag", "share"), [(None, 1.0), ("0.1", 0.1), ("1", 1.0), ("-2", 0.0),
                                            ("7", 1.0), ("nan", 1.0), ("ten", 1.0)])  # fmt: skip
def test_a_rollout_share_tag_reads_as_a_share_of_traffic(tag, share):
    assert _share(tag) == share


class _Log:
    """The prediction log writer as the shadow uses it: what it was given."""

    def __init__(self):
        self.added = []

    def add_scored(self, scored, inputs, path, scored_at, wait=True):
        self.added.append((path, scored.model_version, list(scored.scores)))


class _Count:
    def __init__(self):
        self.total = 0

    def inc(self, amount=1):
        self.total += amount


def test_the_shadow_logs_every_answered_transaction_once_and_a_failing_one_costs_only_itself():
    shadow_log, metrics = _Log(), ServingMetrics.off()
    metrics.shadow_dropped = _Count()
    shadowing = ShadowScoring(shadow_log, metrics)
    lineup = Lineup(_Scorer("2", score=0.2), shadow=_Scorer("3", score=0.7))
    for size in (1, 3, 2, 1):
        shadowing.submit(lineup, lineup.score([{}] * size))
    broken = Lineup(_Scorer("2"), shadow=_Scorer("9", fails=RuntimeError("no weights")))
    broken.shadow.rescore = lambda scored, explain=True: (_ for _ in ()).throw(OSError("gone"))
    shadowing.submit(broken, broken.score([{}] * 4))
    shadowing.submit(Lineup(_Scorer("2")), Lineup(_Scorer("2")).score([{}]))  # no shadow
    shadowing.close()
    rows = [score for path, version, scores in shadow_log.added for score in scores
            if (path, version) == ("shadow", "3")]  # fmt: skip
    assert rows == [0.7] * 7 and metrics.shadow_dropped.total == 4


def test_a_full_shadow_queue_drops_new_batches_and_counts_them():
    metrics = ServingMetrics.off()
    metrics.shadow_dropped = _Count()
    shadowing = ShadowScoring(_Log(), metrics, max_waiting=1)
    slow = _Scorer("3", score=0.7)
    gate = __import__("threading").Event()
    slow.rescore = lambda scored, explain=True: gate.wait() and None
    lineup = Lineup(_Scorer("2"), shadow=slow)
    for _ in range(5):
        shadowing.submit(lineup, lineup.score([{}, {}]))
    gate.set()
    shadowing.close()
    assert metrics.shadow_dropped.total >= 6  # at least 3 of the 5 batches found it full
