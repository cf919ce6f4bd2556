"""Hot swap: a serving process follows a registry alias (`champion`) and scores with the version
it points at, without a restart. A new version is loaded beside the one in service, in a
background thread, warmed up, then swapped in by one assignment; callers read `current` once per
batch, so each batch is scored wholly by one version and no request waits for a load.

Settings (environment): FRAUD_MODEL_ALIAS (`champion`; `off` keeps the model the process
started with), FRAUD_MODEL_POLL_S (10: seconds between looks at the registry)."""

import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from serving.scoring import CircuitBreaker, Scorer, Unguarded, decision_thresholds

log = logging.getLogger("serving.model_follow")
RETRY_FAILED_S = 300.0  # a version that failed to load is tried again after this long


class ModelFollower:
    """The scorer of the version `alias` points at. `version_of_alias()` answers the registry's
    version (None: no version holds the alias); `load(version)` builds its scorer."""

    def __init__(
        self,
        current: Scorer,
        version_of_alias: Callable[[], str | None],
        load: Callable[[str], Scorer],
        alias: str = "champion",
        every_s: float = 10.0,
    ):
        self.current, self.alias, self.every_s = current, alias, every_s
        self._version_of_alias, self._load = version_of_alias, load
        self._failed: dict[str, float] = {}  # version -> when its load failed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.swaps: list[tuple[str, str, dt.datetime]] = []  # (from, to, when)

    def check(self) -> bool:
        """Swap to the alias's version if it moved; whether a swap happened. A version that
        fails to load leaves the one in service in place (and is retried after a while)."""
        wanted = self._version_of_alias()
        if wanted is None or str(wanted) == self.current.model_version:
            return False
        wanted = str(wanted)
        failed_at = self._failed.get(wanted)
        if failed_at is not None and time.monotonic() - failed_at < RETRY_FAILED_S:
            return False
        try:
            scorer = self._load(wanted)
        except Exception:
            log.exception("version %s of alias %r failed to load; v%s stays in service",
                          wanted, self.alias, self.current.model_version)  # fmt: skip
            self._failed[wanted] = time.monotonic()
            return False
        previous, self.current = self.current.model_version, scorer
        self.swaps.append((previous, wanted, dt.datetime.now(dt.UTC)))
        log.info("alias %r moved: v%s -> v%s, swapped in", self.alias, previous, wanted)
        return True

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
                log.warning("registry not reachable (%s); v%s stays in service",
                            error, self.current.model_version)  # fmt: skip
            if self._stop.wait(self.every_s):
                return


def registry_scorer(
    version: str, features, breaker: CircuitBreaker | Unguarded, client=None
) -> Scorer:
    """A warmed-up scorer of registry version `version`, with its thresholds from costs (the
    environment's FRAUD_*_THRESHOLD overriding them)."""
    import mlflow.pyfunc
    from mlflow import MlflowClient

    from ml.registry import MODEL_NAME
    from ml.thresholds import thresholds_from_tags

    client = client or MlflowClient()
    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{version}")
    tags = client.get_model_version(MODEL_NAME, version).tags
    scorer = Scorer(model, version, features, decision_thresholds(thresholds_from_tags(tags)),
                    breaker)  # fmt: skip
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


def follower_from_environment(current: Scorer) -> ModelFollower:
    """A follower of FRAUD_MODEL_ALIAS in this environment's registry, started (its first look
    in its thread: a process does not wait for the registry to start). It stays on `current`
    when the alias is `off`, or when the embedded registry does not exist (a bento served on
    its own)."""
    import mlflow
    from mlflow import MlflowClient

    from ml.registry import version_by_alias
    from settings.env import mlflow_tracking_uri

    alias = os.environ.get("FRAUD_MODEL_ALIAS", "champion")
    fixed = ModelFollower(current, lambda: None, lambda version: current, alias)
    if alias in ("", "off"):
        return fixed
    uri = mlflow_tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        log.info("no registry at %s: v%s stays in service", uri, current.model_version)
        return fixed
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    def version_of_alias() -> str | None:
        found = version_by_alias(alias, client)
        return None if found is None else str(found.version)

    def load(version: str) -> Scorer:
        return registry_scorer(version, current.features, current.breaker, client)

    every_s = float(os.environ.get("FRAUD_MODEL_POLL_S", 10))
    return ModelFollower(current, version_of_alias, load, alias, every_s).start()
