"""Local services (Redis, Postgres, a browser) for running the platform on one machine, as the
tests and the benchmarks do: started when they are down, as on a fresh machine."""

import os
import shutil
import subprocess
import time

REDIS_START = [
    "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379",
    "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
    "--logfile", "/var/log/redis/ci.log",
]  # fmt: skip


def _redis_up() -> bool:
    done = subprocess.run(["redis-cli", "-h", "127.0.0.1", "ping"], capture_output=True, text=True)
    return done.stdout.strip() == "PONG"


def _ensure(is_up, start, name: str, wait_s: float = 10.0) -> None:
    """Run `start` (a command) unless `is_up()`, then wait until it is."""
    if is_up():
        return
    subprocess.run(start, shell=isinstance(start, str), check=True)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if is_up():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not answer within {wait_s:g} s of its start")


def ensure_redis() -> None:
    """Redis on 127.0.0.1:6379, started with the machine's own command if it is down."""
    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server is not installed; the Redis tests need it")
    _ensure(_redis_up, REDIS_START, "redis-server")


def flush_redis_db(db: int) -> None:
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "-n", str(db), "flushdb"], check=True)


POSTGRES_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"


def _postgres_up() -> bool:
    done = subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432"], capture_output=True)
    return done.returncode == 0


def ensure_postgres() -> None:
    """Postgres on 127.0.0.1:5432 (trust auth), started with the machine's own command."""
    _ensure(_postgres_up, POSTGRES_START, "Postgres")


def fresh_postgres_database(name: str) -> str:
    """An empty database `name` (dropped first if it exists); its SQLAlchemy URL."""
    import psycopg2

    ensure_postgres()
    connection = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()
    return f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"


def ensure_debian_package(program: str, package: str) -> str:
    """The path of `program`, installed from Debian's `package` with apt-get when missing."""
    if not shutil.which(program):
        if shutil.which("apt-get") is None:
            raise RuntimeError(f"{program} is missing and apt-get is not here to install it")
        quiet = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", package],
            check=True, capture_output=True, env=quiet,
        )  # fmt: skip
    return shutil.which(program)


CHROMIUM = "/usr/bin/chromium"


def ensure_chromium() -> str:
    """Debian's Chromium for the browser tests (Playwright's own browsers need a download this
    machine cannot make), installed with apt when missing: its path."""
    return ensure_debian_package(CHROMIUM, "chromium")


def ensure_prometheus() -> dict[str, str]:
    """Debian's Prometheus and Alertmanager (with promtool and amtool), installed with apt when
    missing: their paths by program name."""
    ensure_debian_package("prometheus", "prometheus")
    ensure_debian_package("prometheus-alertmanager", "prometheus-alertmanager")
    programs = ("prometheus", "promtool", "prometheus-alertmanager", "amtool")
    return {name: shutil.which(name) for name in programs}
