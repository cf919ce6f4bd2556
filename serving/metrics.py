"""The serving paths' Prometheus series, one set per process. The API makes them with
`bentoml.metrics` (BentoML's multiprocess-safe prometheus-client, exported on the service's
`/metrics` beside BentoML's own series); the stream worker with prometheus-client in a registry
of its own, served on its own port (`stream_metrics`). `ServingMetrics.off()` records nothing (for
measuring what the metrics cost).

Series (all `fraud_`; path online, stream or shadow): http_requests_total{route,status},
latency_seconds{path,stage} (stage total, queue, lookup, model), batch_size{path},
decisions_total{path,decision}, degraded_total{path,reason}, breaker_open,
model_version_info{version,role}, model_swaps_total, canary_failures_total, shadow_dropped_total,
stream_lag_seconds, stream_pending_messages, stream_dead_letters_total,
prediction_log_commit_seconds, prediction_log_pending_rows."""

import logging
from collections.abc import Callable

import numpy as np

log = logging.getLogger("serving.metrics")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class _Nothing:
    """A series that records nothing."""

    def labels(self, *_, **__) -> "_Nothing":
        return self

    def inc(self, *_) -> None:
        pass

    def observe(self, *_) -> None:
        pass

    def set(self, *_) -> None:
        pass


class ServingMetrics:
    """The series, made by `make(kind, name, documentation, labelnames, **options)`."""

    def __init__(self, make: Callable):
        def latency(name, doc, labels=(), buckets=LATENCY_BUCKETS):
            return make("Histogram", name, doc, list(labels), buckets=buckets)

        self.http_requests = make(
            "Counter", "fraud_http_requests", "API requests by route and status",
            ["route", "status"],
        )  # fmt: skip
        self.latency = latency(
            "fraud_latency_seconds", "Time per request or batch: total (request in, answer "
            "out), queue (waiting for its batch), lookup (online features), model (forward pass)",
            ["path", "stage"],
        )  # fmt: skip
        self.batch_size = make("Histogram", "fraud_batch_size", "Transactions scored together",
                               ["path"], buckets=BATCH_BUCKETS)  # fmt: skip
        self.decisions = make("Counter", "fraud_decisions", "Decisions by kind",
                              ["path", "decision"])  # fmt: skip
        self.degraded = make(
            "Counter", "fraud_degraded", "Transactions scored without stored features, by "
            "reason (feature_store_unavailable, feature_store_empty)", ["path", "reason"],
        )  # fmt: skip
        self.breaker_open = make(
            "Gauge", "fraud_breaker_open", "1 while the feature store's circuit breaker is "
            "open (lookups not attempted)", [], multiprocess_mode="livemax",
        )  # fmt: skip
        self.model_version = make(
            "Gauge", "fraud_model_version_info", "1 for each registry version in service, by "
            "role: champion, stable (deciding beside a canary champion), shadow",
            ["version", "role"], multiprocess_mode="livemax",
        )  # fmt: skip
        self.model_swaps = make("Counter", "fraud_model_swaps", "Champion swaps without restart",
                                [])  # fmt: skip
        self.canary_failures = make(
            "Counter", "fraud_canary_failures", "Canary batches the stable version answered "
            "(the canary raised or scored NaN)", [],
        )  # fmt: skip
        self.shadow_dropped = make(
            "Counter", "fraud_shadow_dropped", "Transactions the shadow did not score (its "
            "queue was full, or it failed)", [],
        )  # fmt: skip
        self.stream_lag = make(
            "Histogram", "fraud_stream_lag_seconds", "From a transaction's event time to its "
            "score, per stream batch (its oldest message)", [], buckets=LAG_BUCKETS,
        )  # fmt: skip
        self.stream_pending = make(
            "Gauge", "fraud_stream_pending_messages", "Messages delivered to the consumer "
            "group and not acknowledged yet", [], multiprocess_mode="livemax",
        )  # fmt: skip
        self.dead_letters = make("Counter", "fraud_stream_dead_letters",
                                 "Messages moved to the dead-letter stream", [])  # fmt: skip
        self.log_commit = latency("fraud_prediction_log_commit_seconds",
                                  "One commit of the prediction log")  # fmt: skip
        self.log_pending = make(
            "Gauge", "fraud_prediction_log_pending_rows", "Scores waiting for the prediction "
            "log's next commit", [], multiprocess_mode="livesum",
        )  # fmt: skip
        self._roles: dict[str, str | None] | None = None

    @classmethod
    def off(cls) -> "ServingMetrics":
        return cls(lambda *_, **__: _Nothing())

    @classmethod
    def of_module(cls, module) -> "ServingMetrics":
        """Made with `module`'s classes (`bentoml.metrics`: the API's multiprocess registry)."""
        return cls(lambda kind, *args, **options: getattr(module, kind)(*args, **options))

    def observe_scored(self, scored, path: str, breaker_open: bool = False) -> None:
        """A scored batch: its size, stage times, decisions, degradation, a canary's failure,
        and the state of the breaker it went through."""
        self.breaker_open.set(int(breaker_open))
        self.batch_size.labels(path).observe(len(scored.scores))
        self.latency.labels(path, "lookup").observe(scored.lookup_s)
        self.latency.labels(path, "model").observe(scored.model_s)
        kinds, counts = np.unique(scored.decisions, return_counts=True)
        for decision, count in zip(kinds, counts, strict=True):
            self.decisions.labels(path, decision).inc(count)
        if scored.degraded:
            self.degraded.labels(path, scored.degraded_by).inc(len(scored.scores))
        if scored.error is not None:
            self.canary_failures.inc()

    def observe_lineup(self, roles: dict[str, str | None]) -> None:
        """The versions in service by role (`serving.model_follow.Lineup.roles`); a change of
        them counts as a swap."""
        if roles == self._roles:
            return
        for role, version in (self._roles or {}).items():
            if version is not None:
                self.model_version.labels(version, role).set(0)
        for role, version in roles.items():
            if version is not None:
                self.model_version.labels(version, role).set(1)
        if self._roles is not None:
            self.model_swaps.inc()
        self._roles = roles


def stream_metrics(port: int) -> ServingMetrics:
    """The stream worker's series, in a registry of their own served on `port` (0: not
    served)."""
    import prometheus_client

    registry = prometheus_client.CollectorRegistry()

    def make(kind, *args, multiprocess_mode=None, **options):
        return getattr(prometheus_client, kind)(*args, registry=registry, **options)

    metrics = ServingMetrics(make)
    if port:
        try:
            prometheus_client.start_http_server(port, registry=registry)
        except OSError as taken:  # a second worker on one machine: it scores all the same
            log.warning("metrics not served on port %d: %s", port, taken)
    return metrics
