"""What a lookup needs of each feature view of a service (names, join keys, defaults, TTL), and
offline rows made to look as the online lookup returns them."""

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore, FeatureView


@dataclass(frozen=True)
class ViewSpec:
    """What a lookup needs of one feature view of the service."""

    name: str
    join_keys: tuple[str, ...]  # sorted
    features: tuple[str, ...]
    defaults: tuple[float, ...]
    ttl_s: float  # 0: values never expire

    # Cached: a lookup reads them for every view of every call.
    @cached_property
    def columns(self) -> list[str]:
        return [f"{self.name}__{f}" for f in self.features]

    @cached_property
    def flag(self) -> str:
        return f"{self.name}__missing"


def view_spec(view: "FeatureView", features: list[str]) -> ViewSpec:
    fields = {f.name: f for f in view.features}
    return ViewSpec(
        name=view.name,
        join_keys=tuple(sorted(view.join_keys)),
        features=tuple(features),
        defaults=tuple(_default(fields[f]) for f in features),
        ttl_s=view.ttl.total_seconds() if view.ttl else 0.0,
    )


def _default(field) -> float | int | None:
    """The `default` tag of a feature, typed like the feature; None when it declares none."""
    from feast.types import Int32, Int64

    raw = field.tags.get("default")
    if raw is None:
        return None
    return int(float(raw)) if field.dtype in (Int32, Int64) else float(raw)


def service_views(store: "FeatureStore", service: str) -> list[ViewSpec]:
    """The views of a feature service, each with the features the service takes from it."""
    projections = store.get_feature_service(service).feature_view_projections
    return [
        view_spec(store.get_feature_view(p.name), [f.name for f in p.features]) for p in projections
    ]


def fill_missing(frame: "pd.DataFrame", views: list[ViewSpec]) -> "pd.DataFrame":
    """Offline rows (columns `<view>__<feature>`, null where no value was known within the TTL)
    made to look as `OnlineFeatures.lookup` returns them: the defaults and the flags, and the
    decayed report counts brought to each row's `event_timestamp`."""
    import pandas as pd

    from features.report_decay import bring_to

    out = frame.copy()
    for view in views:
        out[view.flag] = out[view.columns].isna().all(axis=1)
        for column, default in zip(view.columns, view.defaults, strict=True):
            out[column] = out[column].fillna(default)
            if isinstance(default, int):
                out[column] = out[column].astype("int64")
    if "event_timestamp" in out:
        stamps = pd.to_datetime(out["event_timestamp"], utc=True)
        bring_to(out, (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy())
    return out
