"""Servers a benchmark starts and stops: in their own process group, ready when a URL answers
200, stopped (then killed) with the whole group, their port free again afterwards."""

import os
import signal
import socket
import subprocess
import time
import urllib.request


def start_server(command: list[str], env: dict, ready_url: str, seconds: float = 120):
    """Start `command`; return once `ready_url` answers 200, or raise after `seconds`."""
    server = subprocess.Popen(
        command, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(ready_url, timeout=2).status == 200:
                return server
        except OSError:
            time.sleep(0.25)
    stop_server(server)
    raise RuntimeError(f"{command[0]} did not answer {ready_url} in {seconds:g} s")


def stop_server(server: subprocess.Popen, port: int | None = None) -> None:
    """SIGTERM the server's group (SIGKILL after 30 s); wait until `port` is free."""
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while port and time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.5)
