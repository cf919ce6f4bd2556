"""The models a serving process scores with, as the registry says, followed without a restart:
the version holding `champion`; during its canary rollout (tag `rollout_share` < 1 on it) also
the version holding `previous`, which decides the other batches; and, with shadow on, a model
that scores the same transactions after the answer is sent. A new lineup is loaded beside the
one in service, in a background thread, warmed up, then swapped in by one assignment; callers
read `current` once per batch, so each batch is scored wholly by one lineup.

Settings (environment): FRAUD_MODEL_ALIAS (`champion`; `off` keeps the model the process
started with), FRAUD_MODEL_POLL_S (10: seconds between looks at the registry), FRAUD_SHADOW
(an alias, e.g. `challenger`, or a version number: the shadow model; unset: no shadow)."""

import datetime as dt
import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from serving.scoring import (
    CircuitBreaker,
    Scored,
    Scorer,
    Unguarded,
    attributions_on,
    decision_thresholds,
)

log = logging.getLogger("serving.model_follow")
RETRY_FAILED_S = 300.0  # a version that failed to load is tried again after this long


@dataclass(frozen=True)
class Wanted:
    """What the registry says should serve."""

    champion: str | None
    previous: str | None = None  # decides the batches the canary does not, during a rollout
    share: float = 1.0  # of batches the champion decides
    shadow: str | None = None


@dataclass(frozen=True)
class Lineup:
    """The loaded models: `champion` decides a `share` of batches (all, outside a rollout),
    `stable` the others; `shadow` only scores after the answer."""

    champion: Scorer
    stable: Scorer | None = None
    share: float = 1.0
    shadow: Scorer | None = None

    @property
    def model_version(self) -> str:
        return self.champion.model_version

    @property
    def roles(self) -> dict[str, str | None]:
        """The version in each role (None: no model in it)."""
        return {
            "champion": self.champion.model_version,
            "stable": self.stable.model_version if self.stable else None,
            "shadow": self.shadow.model_version if self.shadow else None,
        }

    @property
    def wanted(self) -> Wanted:
        return Wanted(
            self.champion.model_version,
            self.stable.model_version if self.stable else None,
            self.share if self.stable else 1.0,
            self.shadow.model_version if self.shadow else None,
        )

    def score(self, rows, pick: Callable[[], float] = random.random) -> Scored:
        """Scores of a batch, by the champion, or by a canary rollout's draw: the canary for a
        `share` of batches, the stable version for the others and for a canary's batch it
        fails on (an error, or a score that is not a number)."""
        if self.stable is None:
            return self.champion.score(rows)
        if pick() >= self.share:
            return replace(self.stable.score(rows), route="stable")
        try:
            scored = self.champion.score(rows)
            if not np.isfinite(scored.scores).all():
                raise ValueError("scores that are not numbers")
            return replace(scored, route="canary")
        except Exception as error:
            answered = replace(self.stable.score(rows), route="canary")
            why = f"canary v{self.champion.model_version} failed: {error}"
            return replace(answered, error=why[:500])

    def scorer_of(self, scored: Scored) -> Scorer:
        """The scorer that answered `scored` (its inputs are what the log records)."""
        if self.stable is not None and scored.model_version == self.stable.model_version:
            return self.stable
        return self.champion

    def shadow_scores(self, scored: Scored) -> Scored | None:
        """The shadow's scores of a batch already answered (None without a shadow, or when it
        is the model that answered)."""
        if self.shadow is None or self.shadow.model_version == scored.model_version:
            return None
        return self.shadow.rescore(scored, explain=False)


class ModelFollower:
    """The lineup the registry wants. `wanted()` reads the registry; `load(version)` builds a
    version's scorer."""

    def __init__(
        self,
        current: Scorer,
        wanted: Callable[[], Wanted],
        load: Callable[[str], Scorer],
        every_s: float = 10.0,
    ):
        self.current, self.every_s = Lineup(current), every_s
        self._wanted, self._load = wanted, load
        self._failed: dict[str, float] = {}  # version -> when its load failed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.swaps: list[tuple[Wanted, Wanted, dt.datetime]] = []  # (from, to, when)

    def check(self) -> bool:
        """Swap to the lineup the registry wants if it changed; whether a swap happened. A
        champion or stable version that fails to load leaves the lineup in service in place
        (retried after a while); a shadow that fails to load is left out."""
        wanted = self._wanted()
        if wanted.champion is None:  # the alias was deleted: serve on with what is loaded
            return False
        held = self.current
        if wanted == held.wanted:
            return False
        try:
            champion = self._scorer(wanted.champion, held)
            stable = self._scorer(wanted.previous, held) if wanted.share < 1 else None
        except _NotLoaded:
            return False
        try:
            shadow = self._scorer(wanted.shadow, held)
        except _NotLoaded:
            shadow = None
        lineup = Lineup(champion, stable, wanted.share if stable else 1.0, shadow)
        if lineup.wanted == held.wanted:
            return False
        self.current = lineup
        self.swaps.append((held.wanted, lineup.wanted, dt.datetime.now(dt.UTC)))
        log.info("serving %s (was %s)", _described(lineup.wanted), _described(held.wanted))
        return True

    def _scorer(self, version: str | None, held: Lineup) -> Scorer | None:
        """The scorer of `version`: the one held already, else loaded; None for no version."""
        if version is None:
            return None
        for scorer in (held.champion, held.stable, held.shadow):
            if scorer is not None and scorer.model_version == version:
                return scorer
        failed_at = self._failed.get(version)
        if failed_at is not None and time.monotonic() - failed_at < RETRY_FAILED_S:
            raise _NotLoaded(version)
        try:
            return self._load(version)
        except Exception:
            log.exception("version %s failed to load; %s stays in service",
                          version, _described(held.wanted))  # fmt: skip
            self._failed[version] = time.monotonic()
            raise _NotLoaded(version) from None

    def start(self) -> "ModelFollower":
        """Look at the registry every `every_s` seconds in a daemon thread."""
        self._thread = threading.Thread(target=self._follow, name="model-follow", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _follow(self) -> None:
        while True:
            try:
                self.check()
            except Exception as error:  # the registry is down: serve on with what is loaded
                log.warning("registry not reachable (%s); %s stays in service",
                            error, _described(self.current.wanted))  # fmt: skip
            if self._stop.wait(self.every_s):
                return


class _NotLoaded(Exception):
    pass


def _described(wanted: Wanted) -> str:
    text = f"v{wanted.champion}"
    if wanted.previous is not None:
        text += f" on {wanted.share:.0%} of batches (canary), v{wanted.previous} on the rest"
    if wanted.shadow is not None:
        text += f", v{wanted.shadow} in shadow"
    return text


def registry_scorer(
    version: str, features, breaker: CircuitBreaker | Unguarded, client=None
) -> Scorer:
    """A warmed-up scorer of registry version `version`, with its thresholds from costs (the
    environment's FRAUD_*_THRESHOLD overriding them), explaining its scores unless
    FRAUD_ATTRIBUTIONS is `off`."""
    import mlflow.pyfunc
    from mlflow import MlflowClient

    from ml.registry import MODEL_NAME
    from ml.thresholds import thresholds_from_tags

    client = client or MlflowClient()
    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{version}")
    tags = client.get_model_version(MODEL_NAME, version).tags
    thresholds = decision_thresholds(thresholds_from_tags(tags))
    scorer = Scorer(model, version, features, thresholds, breaker, explain=attributions_on())
    warm_up(scorer)
    return scorer


def warm_up(scorer: Scorer) -> None:
    """Score one made-up transaction: a model's first pass is slower than the rest, and it is
    better paid here than by a request."""
    from serving.transaction import Transaction

    probe = Transaction(
        transaction_id="warm-up", event_timestamp=dt.datetime.now(dt.UTC),
        customer_id="__probe__", card_id="__probe__", merchant_id="__probe__",
        amount="1.00", currency="USD",
    )  # fmt: skip
    scorer.score([probe.scoring_row()])


def registry_wanted(client, alias: str = "champion", shadow: str = "") -> Wanted:
    """What the registry wants served: `alias`'s version, its rollout share and the version
    holding `previous` during a rollout, and the `shadow` (an alias or a version number)."""
    from ml.registry import version_by_alias
    from ml.rollout import SHARE_TAG

    found = version_by_alias(alias, client)
    if found is None:
        return Wanted(None)
    share = _share(found.tags.get(SHARE_TAG))
    previous = version_by_alias("previous", client) if share < 1 else None
    if shadow.isdigit():
        shadowed = shadow
    else:
        held = version_by_alias(shadow, client) if shadow else None
        shadowed = str(held.version) if held is not None else None
    return Wanted(
        str(found.version),
        str(previous.version) if previous is not None else None,
        share if previous is not None else 1.0,
        shadowed,
    )


def _share(tag: str | None) -> float:
    """A rollout share tag as a number in [0, 1] (absent or unreadable: 1, the whole traffic)."""
    try:
        share = float(tag) if tag is not None else 1.0
    except ValueError:
        return 1.0
    return min(max(share, 0.0), 1.0) if math.isfinite(share) else 1.0


def follower_from_environment(current: Scorer) -> ModelFollower:
    """A follower of FRAUD_MODEL_ALIAS (and FRAUD_SHADOW) in this environment's registry,
    started (its first look in its thread: a process does not wait for the registry to start).
    It stays on `current` when the alias is `off`, or when the embedded registry does not
    exist (a bento served on its own)."""
    import mlflow
    from mlflow import MlflowClient

    from settings.env import mlflow_tracking_uri

    alias = os.environ.get("FRAUD_MODEL_ALIAS", "champion")
    fixed = ModelFollower(current, lambda: Wanted(None), lambda version: current)
    if alias in ("", "off"):
        return fixed
    uri = mlflow_tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        log.info("no registry at %s: v%s stays in service", uri, current.model_version)
        return fixed
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    shadow = os.environ.get("FRAUD_SHADOW", "")

    def load(version: str) -> Scorer:
        return registry_scorer(version, current.features, current.breaker, client)

    every_s = float(os.environ.get("FRAUD_MODEL_POLL_S", 10))
    wanted = lambda: registry_wanted(client, alias, shadow)  # noqa: E731
    return ModelFollower(current, wanted, load, every_s).start()
