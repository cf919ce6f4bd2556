"""The online scoring API (BentoML): `POST /score` takes one transaction; in each worker,
concurrent requests are scored together (`serving.batcher`: one feature lookup and one forward
pass per batch); `POST /score_batch` takes a list (`batchable=True`). Guarded by an API key, a
body cap, a concurrency limit (429) and a timeout (504).

Settings (environment): FRAUD_API_KEY (required), FRAUD_REVIEW_THRESHOLD and
FRAUD_DECLINE_THRESHOLD (overrides of the model version's thresholds from costs; without
either, 0.5 and 0.9), FRAUD_LOOKUP_TIMEOUT_MS (250: slower lookups count as failures
of the feature store), FRAUD_WORKERS (one per core), FRAUD_MAX_CONCURRENCY (64, shared
by the workers), FRAUD_TIMEOUT_S (2), FRAUD_LOG_FLUSH_S (10: how often scores are committed to
monitoring/prediction_log), FRAUD_LOG_JOURNAL (the local directory where each answered score
is journaled until it is committed; default $FRAUD_HOME/journal/prediction_log),
FRAUD_LOG_MAX_PENDING (50000: scores a worker holds uncommitted before it answers 503),
FRAUD_BATCHING (`off` scores each request alone, for comparison), FRAUD_ATTRIBUTIONS (`off`:
reason codes by rule instead of the model's attributions, for comparison), FRAUD_METRICS
(`off` records no series of its own on /metrics (`serving.metrics`), for comparison),
FRAUD_ACCESS_LOG (`on` logs a line per request; off by default), FRAUD_MODEL_ALIAS and
FRAUD_MODEL_POLL_S (the registry alias followed, `champion`, and how often it is looked at),
FRAUD_SHADOW (a model scoring the same transactions after the answer: `serving.model_follow`,
`serving.shadow`), and the feature store's FRAUD_HOME / FEAST_REGISTRY / FEAST_ONLINE_STORE /
LAKEHOUSE_URI. Build argument `model_tag` names the BentoML model a worker starts with (default
`fraud-detector:latest`)."""

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import os
import time
from pathlib import Path

import bentoml
from pydantic import BaseModel, Field

from serving import heap
from serving.http_guards import GuardMiddleware, observe_requests, refuse_while
from serving.transaction import Transaction

MAX_BODY_BYTES = 16 * 1024
MAX_BATCH = 64


class BuildArgs(BaseModel):
    model_tag: str = "fraud-detector:latest"


ARGS = bentoml.use_arguments(BuildArgs)


class ScoreResponse(BaseModel):
    """The answer for one transaction."""

    transaction_id: str
    score: float = Field(description="Fraud probability")
    decision: str = Field(description="approve | review | decline")
    reasons: list[str] = Field(description="Reason codes that hold for this transaction")
    degraded: bool = Field(
        description="Scored without stored features (request features only): the store is "
        "unreachable (reason feature_store_unavailable) or holds nothing (feature_store_empty)"
    )
    model_version: str = Field(description="Registry version of fraud-detector")
    latency_ms: float = Field(0.0, description="Time spent in the service")


@bentoml.service(
    name="fraud_scoring",
    workers=int(os.environ.get("FRAUD_WORKERS", 0)) or os.cpu_count() or 1,
    traffic={
        "timeout": float(os.environ.get("FRAUD_TIMEOUT_S", 2)),
        "max_concurrency": int(os.environ.get("FRAUD_MAX_CONCURRENCY", 64)),
    },
    # A log line per request cost a fifth of the throughput; /metrics counts every request.
    logging={"access": {"enabled": os.environ.get("FRAUD_ACCESS_LOG", "off") == "on"}},
)
class FraudScoring:
    """Card-fraud scoring: one transaction in, a score, a decision and reason codes out."""

    model = bentoml.models.BentoModel(ARGS.model_tag)

    def __init__(self):
        import torch

        from features.lookup import OnlineFeatures
        from features.store import FEATURE_SERVICE, open_serving_store
        from serving.batcher import AdaptiveBatcher
        from serving.champion import load_stored, stored_thresholds
        from serving.metrics import ServingMetrics
        from serving.model_follow import follower_from_environment, warm_up
        from serving.prediction_log import PredictionLogWriter
        from serving.scoring import CircuitBreaker, Scorer, attributions_on, decision_thresholds
        from serving.shadow import ShadowScoring
        from settings.env import fraud_home, lakehouse_root, prepare_process_environment

        prepare_process_environment()
        # BentoML's root logger passes warnings only: the serving modules' own lines (a model
        # swapped in) belong in the service's output too
        logging.getLogger("serving").setLevel(logging.INFO)
        # One worker per core: torch's own threads would only fight the other workers for it
        # (a worker was seen at 120% CPU, spinning).
        torch.set_num_threads(1)
        on = os.environ.get("FRAUD_METRICS", "on") != "off"
        self.metrics = ServingMetrics.of_module(bentoml.metrics) if on else ServingMetrics.off()
        observe_requests(self._observe_request)
        pyfunc, version = load_stored(self.model.path)
        store = open_serving_store(fraud_home())
        self.features = OnlineFeatures.for_service(store, FEATURE_SERVICE)
        self.breaker = CircuitBreaker(
            timeout_ms=float(os.environ.get("FRAUD_LOOKUP_TIMEOUT_MS", 250))
        )
        thresholds = decision_thresholds(stored_thresholds(self.model.path))
        bento_model = Scorer(pyfunc, version, self.features, thresholds, self.breaker,
                             explain=attributions_on())  # fmt: skip
        self.log = PredictionLogWriter(
            f"{lakehouse_root()}/monitoring/prediction_log",
            flush_s=float(os.environ.get("FRAUD_LOG_FLUSH_S", 10.0)),
            max_pending_rows=int(os.environ.get("FRAUD_LOG_MAX_PENDING", 50_000)),
            journal_dir=Path(
                os.environ.get("FRAUD_LOG_JOURNAL") or fraud_home() / "journal" / "prediction_log"
            ),
            metrics=self.metrics,
        )
        self.shadow = ShadowScoring(self.log, self.metrics)
        refuse_while(self._log_backlog)
        self._warm_up()
        warm_up(bento_model)
        # the registry's champion replaces the bento's model if it differs, and on each move
        self.models = follower_from_environment(bento_model)
        batching = os.environ.get("FRAUD_BATCHING", "on") != "off"
        queue = self.metrics.latency.labels("online", "queue")
        self.batcher = AdaptiveBatcher(
            self._score, max_batch=MAX_BATCH if batching else 1, queued=queue.observe
        )
        heap.settle()

    def _warm_up(self) -> None:
        """One lookup before the first request: a worker's first one imports and connects, which
        took longer than the breaker's 250 ms and degraded its first answers."""
        # the store is down: /readyz says so, and requests are scored degraded
        with contextlib.suppress(Exception):
            self._probe_lookup()

    def _probe_lookup(self) -> dict:
        """A lookup of an entity no store holds: it reaches the store, and finds nothing."""
        return self.features.lookup([dict.fromkeys(self.features.join_keys, "__probe__")])

    @bentoml.on_shutdown
    def _flush_log(self):
        self.models.stop()
        self.shadow.close()
        self.log.close()

    @bentoml.api(route="/score")
    async def score(self, transaction: Transaction) -> ScoreResponse:
        """Score one transaction with the champion model and its online features."""
        started = time.perf_counter()
        result = await self.batcher.submit(transaction)
        result.latency_ms = round((time.perf_counter() - started) * 1000, 3)
        return result

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH, max_latency_ms=1000)
    def score_batch(self, transactions: list[Transaction]) -> list[ScoreResponse]:
        """Score a list of transactions in one call."""
        return self._score(transactions)

    def _observe_request(self, route: str, status: int, seconds: float) -> None:
        self.metrics.http_requests.labels(route, str(status)).inc()
        if route != "other":
            self.metrics.latency.labels("online", "total").observe(seconds)

    def _log_backlog(self) -> str | None:
        """Why requests get 503: the prediction log holds too many uncommitted scores (its
        store is down), so an answer would not be recorded and memory would grow."""
        if self.log.accepting:
            return None
        return (
            f"prediction_log_backlog: {self.log.pending_rows} scores wait for the prediction "
            "log's store; retry later"
        )

    def _score(self, transactions: list[Transaction]) -> list[ScoreResponse]:
        if not transactions:
            return []
        lineup = self.models.current  # one lineup scores the whole batch
        self.metrics.observe_lineup(lineup.roles)
        scored = lineup.score([t.scoring_row() for t in transactions])
        self.metrics.observe_scored(scored, "online", self.breaker.open)
        now = dt.datetime.now(dt.UTC)
        self.log.add_scored(scored, lineup.scorer_of(scored).inputs, "online", now, wait=False)
        self.shadow.submit(lineup, scored)  # scored in its own thread, as the answers go out
        return [
            ScoreResponse(
                transaction_id=t.transaction_id,
                score=score,
                decision=decision,
                reasons=reasons,
                degraded=scored.degraded,
                model_version=scored.model_version,
            )
            for t, score, decision, reasons in zip(
                transactions,
                scored.scores.tolist(),
                scored.decisions.tolist(),
                scored.reasons.to_pylist(),
                strict=True,
            )
        ]

    async def __is_ready__(self) -> bool:
        """Ready once a lookup of an entity no store holds goes through the scorer's circuit
        breaker (not while it fails, is slow, or the breaker is open) and the store holds
        something (not a Redis restarted without its data), and while the prediction log takes
        this worker's scores (not while it sheds load)."""
        if not self.log.accepting:
            return False
        lookup = functools.partial(self.breaker.call, self._probe_lookup)
        if await asyncio.to_thread(lookup) is None:
            return False
        holds = functools.partial(self.breaker.call, self.features.holds_any)
        return bool(await asyncio.to_thread(holds))


FraudScoring.add_asgi_middleware(
    GuardMiddleware,
    key_variable="FRAUD_API_KEY",
    max_bytes=MAX_BODY_BYTES,
    routes=frozenset({"/score", "/score_batch"}),
)
