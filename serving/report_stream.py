"""The report worker: fraud reports from a Redis Stream (consumer group) -> each merchant's
decayed report counts (`features.report_decay`) pushed to Feast -> acknowledged. The day's own
reports reach the online store at once, instead of with the next day's history.

    python -m serving.report_stream [--batch 500] [--block-ms 1000] [--max-idle-s 60]
                                    [--until-idle]

STREAM_URL (default redis://127.0.0.1:6379/0), REPORT_STREAM_NAME (fraud:reports),
REPORT_STREAM_GROUP (report-counters). A message holds one field `report`: the JSON of
`FraudReport`. One that cannot be parsed goes to `<REPORT_STREAM_NAME>:dead` with the error.

Each merchant's state lives in Redis (`<name>:state`), written with the reports it counts
(`<name>:counted`) and their acknowledgement in one transaction, and pushed after: a worker
killed before the transaction leaves its messages pending and they count once when delivered
again (to it, or to another worker once idle `--max-idle-s`); killed after it, a restarted
worker pushes the states the online store lacks. A state starts from the online store's value
when that one is newer: the daily history put it there, and it holds every report up to its
last, so a streamed report no newer than that one is left to it (counted already)."""

import argparse
import datetime as dt
import json
import logging
import math
import signal
import sys

from pydantic import BaseModel, ConfigDict, Field

from features.report_decay import HORIZON, KEY, SINCE, TAU_S, VIEW, DecayedReports
from serving.stream_group import GroupReader, dead_letter, message_model, text
from serving.transaction import UtcDatetime
from settings.stream import StreamSettings

log = logging.getLogger("serving.report_stream")
LOCK_S = 60  # longer than any batch: a lock outliving its holder frees itself then


class FraudReport(BaseModel):
    """A fraud report (a chargeback, a customer's claim) on one transaction."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    transaction_id: str = Field(min_length=1, max_length=128)
    merchant_id: str = Field(min_length=1, max_length=128)
    reported_at: UtcDatetime = Field(description="When the report arrived (ISO 8601, UTC)")


def parse(fields: dict) -> FraudReport:
    """The report of a stream message; ValueError (with the reason) when it has none."""
    return message_model(fields, "report", FraudReport)


class ReportWorker:
    """Counts batches of report messages into the merchants' states and pushes them.
    `stored(merchants)` gives the online store's values (`OnlineFeatures.stored` of the view);
    `push(rows)` writes rows of the view's push source."""

    def __init__(self, settings: StreamSettings, redis_client, stored, push):
        self.settings, self.redis, self._stored, self._push = settings, redis_client, stored, push
        self.stopping = False
        self._group = GroupReader(redis_client, settings)
        self.repushed = self._push_what_the_store_lacks()

    @property
    def _state_key(self) -> str:
        return f"{self.settings.name}:state"

    @property
    def _counted_key(self) -> str:
        return f"{self.settings.name}:counted"

    def process(self, messages: list) -> dict[str, int]:
        """Count a batch; how many reports were counted, found counted before, dead-lettered."""
        s = self.settings
        good, dead = [], []
        for message_id, fields in messages:
            try:
                good.append((message_id, parse(fields)))
            except ValueError as error:
                dead.append((message_id, fields, str(error)))
        with self.redis.lock(f"{s.name}:lock", timeout=LOCK_S, blocking_timeout=LOCK_S):
            fresh = self._not_counted([r for _, r in good])
            states, from_history = self._states({r.merchant_id for r in fresh})
            counts = DecayedReports(states)
            newest, in_history = {}, 0
            for report in sorted(fresh, key=lambda r: r.reported_at):
                merchant, at = report.merchant_id, report.reported_at.timestamp()
                if at <= from_history.get(merchant, -math.inf):
                    in_history += 1  # the history's value, which starts the state, counts it
                    continue
                newest[merchant] = counts.add(merchant, at)
            pipe = self.redis.pipeline(transaction=True)
            for message_id, fields, error in dead:
                dead_letter(pipe, s, message_id, fields, error)
            if newest:
                pipe.hset(self._state_key, mapping={m: _encoded(states[m]) for m in newest})
            if fresh:
                pipe.zadd(self._counted_key,
                          {r.transaction_id: r.reported_at.timestamp() for r in fresh})  # fmt: skip
            if messages:
                pipe.xack(s.name, s.group, *(m for m, _ in messages))
            pipe.execute()
        if newest:
            self._push([_row(m, values) for m, values in newest.items()])
        return {"counted": len(fresh) - in_history, "in_history": in_history,
                "counted_before": len(good) - len(fresh), "dead_lettered": len(dead)}  # fmt: skip

    def _not_counted(self, reports: list[FraudReport]) -> list[FraudReport]:
        """The reports whose transaction no batch counted yet, the first of each."""
        if not reports:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for report in reports:
            pipe.zscore(self._counted_key, report.transaction_id)
        seen, out = set(), []
        for report, score in zip(reports, pipe.execute(), strict=True):
            if score is None and report.transaction_id not in seen:
                seen.add(report.transaction_id)
                out.append(report)
        return out

    def _states(self, merchants: set[str]) -> tuple[dict, dict[str, float]]:
        """Each merchant's state: the worker's own, or the online store's where that is newer
        (the history's, which holds every report up to its last: the time of that one, per
        merchant whose state it starts, is the second of the pair)."""
        merchants = sorted(merchants)
        if not merchants:
            return {}, {}
        own = self.redis.hmget(self._state_key, merchants)
        stored = self._stored(merchants)
        states, from_history = {}, {}
        for merchant, mine, online in zip(merchants, own, stored, strict=True):
            if mine is not None:
                states[merchant] = _decoded(mine)
            if online is not None:
                last = online[1][SINCE]
                if merchant not in states or last > states[merchant][0]:
                    states[merchant] = (last, {name: online[1][name] for name in TAU_S})
                    from_history[merchant] = last
        return states, from_history

    def _push_what_the_store_lacks(self) -> int:
        """Push the states newer than the online store's (a worker killed between its commit
        and its push), and forget those older than the horizon and the reports counted then;
        how many were pushed."""
        now = dt.datetime.now(dt.UTC).timestamp()
        states = {text(m): _decoded(v) for m, v in self.redis.hgetall(self._state_key).items()}
        old = [m for m, (last, _) in states.items() if now - last > HORIZON.total_seconds()]
        if old:
            self.redis.hdel(self._state_key, *old)
        self.redis.zremrangebyscore(self._counted_key, "-inf", now - HORIZON.total_seconds())
        kept = sorted(m for m in states if m not in old)
        stored = self._stored(kept) if kept else []
        behind = [
            _row(m, {**states[m][1], SINCE: states[m][0]})
            for m, online in zip(kept, stored, strict=True)
            if online is None or online[1][SINCE] < states[m][0]
        ]
        if behind:
            self._push(behind)
        return len(behind)

    def run(
        self, batch: int, block_ms: int, max_idle_s: float, until_idle: bool = False
    ) -> dict[str, int]:
        """Consume until stopped (or, `until_idle`, until a read finds nothing); the counts."""
        totals = {"counted": 0, "in_history": 0, "counted_before": 0, "dead_lettered": 0}
        while not self.stopping:
            messages, _ = self._group.read(batch, block_ms, int(max_idle_s * 1000))
            if not messages:
                if until_idle:
                    break
                continue
            for name, count in self.process(messages).items():
                totals[name] += count
        log.info("%s", totals)
        return totals


def _row(merchant: str, values: dict[str, float]) -> dict:
    """A row of the view's push source: the state as of the merchant's last report."""
    at = dt.datetime.fromtimestamp(values[SINCE], dt.UTC)
    return {KEY: merchant, "event_timestamp": at, **{n: values[n] for n in (*TAU_S, SINCE)}}


def _encoded(state: tuple[float, dict[str, float]]) -> str:
    return json.dumps([state[0], state[1]])


def _decoded(raw) -> tuple[float, dict[str, float]]:
    last, sums = json.loads(raw)
    return last, sums


def build_worker() -> ReportWorker:
    """A worker on this environment's report stream and feature store."""
    import pandas as pd
    import redis
    from feast.data_source import PushMode

    from features.lookup import OnlineFeatures
    from features.store import open_serving_store
    from settings.env import fraud_home, prepare_process_environment

    prepare_process_environment()
    store = open_serving_store(fraud_home())
    online = OnlineFeatures.for_views(store, [VIEW])
    settings = StreamSettings.reports_from_environment()
    return ReportWorker(
        settings,
        redis.Redis.from_url(settings.url),
        stored=lambda merchants: online.stored([{KEY: m} for m in merchants])[VIEW],
        push=lambda rows: store.push(f"{VIEW}_push", pd.DataFrame(rows), to=PushMode.ONLINE),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.report_stream", description=__doc__)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--block-ms", type=int, default=1000)
    parser.add_argument(
        "--max-idle-s",
        type=float,
        default=60.0,
        help="claim another consumer's message left pending this long",
    )
    parser.add_argument("--until-idle", action="store_true", help="stop once the stream is drained")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    worker = build_worker()

    def stop(*_):
        worker.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    s = worker.settings
    log.info("consuming %s as %s/%s; %d states pushed again", s.name, s.group, s.consumer,
             worker.repushed)  # fmt: skip
    worker.run(args.batch, args.block_ms, args.max_idle_s, args.until_idle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
