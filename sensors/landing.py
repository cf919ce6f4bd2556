"""Landing-file sensor: one bronze run per new or changed landing file, never twice for one."""

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from assets import keys
from assets.partitions import daily_partitions
from jobs import bronze_job
from lakehouse.landing import SOURCES
from resources.lakehouse import LakehouseResource


@dataclass(frozen=True)
class LandingFile:
    table: str
    relative_path: str
    day: dt.date
    signature: str  # mtime and size: a rewritten file is a new file

    @property
    def run_key(self) -> str:
        return f"{self.relative_path}@{self.signature}"


def scan_landing(landing: Path) -> list[LandingFile]:
    """Every landing file of a known feed whose name carries a day."""
    found = []
    for source in SOURCES.values():
        for path in sorted((landing / source.folder).glob(f"*{source.suffix}")):
            day = source.day_of(path)
            if day is None:
                continue
            stat = path.stat()
            found.append(
                LandingFile(
                    table=source.table,
                    relative_path=str(path.relative_to(landing)),
                    day=day,
                    signature=f"{stat.st_mtime_ns}:{stat.st_size}",
                )
            )
    return found


def new_files(files: list[LandingFile], cursor: str | None) -> tuple[list[LandingFile], str]:
    """Files not seen with this signature before, and the cursor that remembers them all.
    Files that disappeared are forgotten, so the cursor stays as small as the landing zone."""
    seen: dict[str, str] = json.loads(cursor) if cursor else {}
    fresh = [f for f in files if seen.get(f.relative_path) != f.signature]
    remembered = {f.relative_path: f.signature for f in files}
    return fresh, json.dumps(remembered, sort_keys=True)


@dg.sensor(
    job=bronze_job,
    minimum_interval_seconds=30,
    description="Starts a bronze run for each new landing file; run_key = path@mtime:size.",
)
def landing_sensor(context: dg.SensorEvaluationContext, lakehouse: LakehouseResource):
    fresh, cursor = new_files(scan_landing(lakehouse.landing_path), context.cursor)
    valid_days = set(daily_partitions.get_partition_keys())
    requests, skipped = [], []
    for file in fresh:
        if file.day.isoformat() not in valid_days:
            skipped.append(file.relative_path)
            continue
        requests.append(
            dg.RunRequest(
                run_key=file.run_key,
                partition_key=file.day.isoformat(),
                asset_selection=[keys.bronze(file.table)],
                tags={"fraud/landing_file": file.relative_path},
            )
        )
    if skipped:
        context.log.warning(f"no partition for {len(skipped)} file(s), e.g. {skipped[0]}")
    return dg.SensorResult(run_requests=requests, cursor=cursor)
