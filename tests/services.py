"""Local services the tests talk to: started when they are down, as on a fresh machine."""

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


def ensure_redis() -> None:
    """Redis on 127.0.0.1:6379, started with the machine's own command if it is down."""
    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server is not installed; the Redis tests need it")
    if _redis_up():
        return
    subprocess.run(REDIS_START, check=True)
    for _ in range(50):
        if _redis_up():
            return
        time.sleep(0.1)
    raise RuntimeError("redis-server did not answer PING after start")


def flush_redis_db(db: int) -> None:
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "-n", str(db), "flushdb"], check=True)
