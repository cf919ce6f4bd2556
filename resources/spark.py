"""Spark sessions: local mode by default, a Spark Connect cluster when SPARK_REMOTE is set."""

from __future__ import annotations

import os
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

    def session(self) -> SparkSession:
        from pyspark.sql import SparkSession

        if not self.remote:
            # Local mode talks to itself only; without this Spark warns about the hostname.
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = SparkSession.builder.appName("fraud-platform")
        builder = builder.remote(self.remote) if self.remote else builder.master(self.master)
        settings = {
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.shuffle.partitions": str(self.shuffle_partitions),
            "spark.ui.showConsoleProgress": "false",
        }
        if not self.remote:
            settings |= {"spark.driver.memory": self.driver_memory, "spark.ui.enabled": "false"}
        for key, value in {**settings, **self.conf}.items():
            builder = builder.config(key, value)
        session = builder.getOrCreate()
        if not self.remote:
            session.sparkContext.setLogLevel("ERROR")
        return session
