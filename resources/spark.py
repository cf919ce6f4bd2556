"""Spark sessions: local mode by default, a Spark Connect cluster when SPARK_REMOTE is set."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class SparkResource(dg.ConfigurableResource):
    """Builds (or reuses) the Spark session a step runs on."""

    master: str = "local[2]"
    remote: str | None = None
    driver_memory: str = "4g"
    shuffle_partitions: int = 8
    conf: dict[str, str] = {}  # noqa: RUF012 - pydantic copies field defaults

    @contextmanager
    def session(self) -> Iterator[SparkSession]:
        """The session for one step. A Spark Connect session is stopped afterwards: its client
        threads would otherwise keep the run's process alive. A local one is kept for reuse."""
        session = self._build()
        try:
            yield session
        finally:
            if self.remote:
                session.stop()

    def _build(self) -> SparkSession:
        from pyspark.sql import SparkSession

        if not self.remote:
            # Local mode talks to itself only; without this Spark warns about the hostname.
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = SparkSession.builder.appName("fraud-platform")
        builder = builder.remote(self.remote) if self.remote else builder.master(self.master)
        settings = {
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.shuffle.partitions": str(self.shuffle_partitions),
        }
        if not self.remote:  # settings a Spark Connect server fixes at its own start
            settings |= {
                "spark.driver.memory": self.driver_memory,
                # silver collects its rows to the driver: they may take its whole heap
                "spark.driver.maxResultSize": self.driver_memory,
                "spark.ui.enabled": "false",
                "spark.ui.showConsoleProgress": "false",
            }
        for key, value in {**settings, **self.conf}.items():
            builder = builder.config(key, value)
        session = builder.getOrCreate()
        if not self.remote:
            session.sparkContext.setLogLevel("ERROR")
        return session


def arrow_to_spark(session: SparkSession, table):
    """An Arrow table as a DataFrame; an empty one keeps its schema (Spark Connect cannot infer a
    schema from no rows, where local Spark reads the Arrow schema)."""
    if table.num_rows:
        return session.createDataFrame(table)
    from pyspark.sql.pandas.types import from_arrow_schema

    return session.createDataFrame([], schema=from_arrow_schema(table.schema))
