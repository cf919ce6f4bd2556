"""Benchmark: point-in-time features of the last `--days` days of silver transactions, per view,
by the project's as-of join (`features.offline.as_of_values`) and by Feast's own
`get_historical_features` (its file offline store), on `make demo`'s state: seconds each and the
values that differ (run `make demo` first).

    python -m bench.point_in_time [--days 7]"""

import argparse
import datetime as dt
import os
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.point_in_time", description=__doc__)
    parser.add_argument("--days", type=int, default=7)
    args = parser.parse_args(argv)

    import numpy as np
    import pyarrow.compute as pc

    from features.offline import as_of_values, historical_features, joined_at
    from features.store import FEATURE_SERVICE
    from features.views import service_views
    from lakehouse.delta import ALL_DAYS
    from resources import build_resources
    from serving.transaction import SCORING_COLUMNS
    from settings.env import prepare_process_environment

    prepare_process_environment()
    resources = build_resources()
    lakehouse, store = resources["lakehouse"], resources["feast"].store()
    days = lakehouse.read("silver", "transactions", *ALL_DAYS, columns=["day"])["day"]
    last = pc.max(days).as_py()
    first = last - dt.timedelta(days=args.days - 1)
    rows = lakehouse.read("silver", "transactions", first, last, columns=SCORING_COLUMNS)
    rows = rows.to_pandas()
    print(f"{len(rows):,} transactions of {first} .. {last}")
    print(f"{'view':18} {'as-of join':>11} {'Feast':>8} {'values differing':>17}")
    totals = [0.0, 0.0]
    for spec in service_views(store, FEATURE_SERVICE):
        view = store.get_feature_view(spec.name)
        at = rows.assign(event_timestamp=rows.event_timestamp - joined_at(view))
        started = time.perf_counter()
        ours = as_of_values(at, view)
        middle = time.perf_counter()
        feasts = historical_features(store, at[[*view.join_keys, "event_timestamp"]], [view])
        ended = time.perf_counter()
        differing = 0
        for column in ours.columns:
            got, want = ours[column].astype(float), feasts[column].astype(float)
            differing += int((~np.isclose(got, want, atol=1e-6, equal_nan=True)).sum())
        totals[0] += middle - started
        totals[1] += ended - middle
        print(f"{spec.name:18} {middle - started:>10.2f}s {ended - middle:>7.2f}s {differing:>17}")
    print(f"{'all views':18} {totals[0]:>10.2f}s {totals[1]:>7.2f}s")
    print(f"machine: {os.cpu_count()} cores; date {time.strftime('%Y-%m-%d')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
