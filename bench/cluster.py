"""Several `liandong serve` nodes on one PostgreSQL behind HAProxy, on loopback: the multi-node
deployment the README documents (app/balancer.py writes the balancer's configuration), started for
the failover benchmark and its test."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from app.balancer import Address, haproxy_config
from bench.dispatch import ROOT, bench_config, free_port

HAPROXY = "/usr/sbin/haproxy"


def cluster_config(workdir: Path, edits: dict[str, str]) -> Path:
    """The benchmarks' config.toml for every node alike: the balancer trusted, no demo hall, media and
    recordings in `workdir`, `edits` applied."""
    return bench_config(workdir, {
        "hall_every_s = 15": "hall_every_s = 0", "trusted_proxies = []": 'trusted_proxies = ["127.0.0.1"]',
        'media_dir = "var/media"': f'media_dir = "{workdir / "media"}"',
        'recordings_dir = "var/recordings"': f'recordings_dir = "{workdir / "recordings"}"', **edits})


@dataclass
class Node:
    name: str
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, database_url: str, config: Path) -> None:
        env = {**os.environ, "LIANDONG_CONFIG": str(config), "LIANDONG_DATABASE_URL": database_url,
               "LIANDONG_LISTEN": f"127.0.0.1:{self.port}"}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "app.cli", "serve"], env=env, cwd=ROOT,
                                            stdout=out, stderr=subprocess.STDOUT)

    def kill(self) -> float:
        """kill -9: no goodbye to anyone. When it happened (time.monotonic())."""
        assert self.process is not None
        at = time.monotonic()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        return at

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def wait_answering(http: aiohttp.ClientSession, url: str, alive: subprocess.Popen[bytes], log: Path,
                         within_s: float = 90.0) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if alive.poll() is not None:
            raise RuntimeError(f"{log.name} ended:\n{tail(log)}")
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(url) as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {within_s} s:\n{tail(log)}")


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


@dataclass
class Cluster:
    nodes: list[Node]
    balancer_port: int
    balancer: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        """Where clients connect: the balancer."""
        return f"http://127.0.0.1:{self.balancer_port}"



@contextlib.asynccontextmanager
async def cluster(database_url: str, workdir: Path, count: int = 3,
                  edits: dict[str, str] | None = None) -> AsyncIterator[Cluster]:
    """`count` nodes on `database_url` and HAProxy in front of them, all answering; stopped on exit."""
    config = cluster_config(workdir, edits or {})
    nodes = [Node(f"node{i}", free_port(), workdir / f"node{i}.log") for i in range(1, count + 1)]
    running = Cluster(nodes, free_port())
    try:
        # One after another: each applies migrations and seeds on start; the first does the work.
        async with aiohttp.ClientSession() as http:
            for node in nodes:
                node.start(database_url, config)
                assert node.process is not None
                await wait_answering(http, node.base + "/healthz", node.process, node.log)
            haproxy_file = workdir / "haproxy.cfg"
            haproxy_file.write_text(haproxy_config(Address("127.0.0.1", running.balancer_port),
                                                   [Address("127.0.0.1", n.port) for n in nodes]), encoding="utf-8")
            balancer_log = workdir / "haproxy.log"
            with balancer_log.open("ab") as out:
                running.balancer = subprocess.Popen([HAPROXY, "-db", "-f", str(haproxy_file)], stdout=out,
                                                    stderr=subprocess.STDOUT)
            await wait_answering(http, running.base + "/healthz", running.balancer, balancer_log)
        yield running
    finally:
        if running.balancer is not None:
            running.balancer.terminate()
            running.balancer.wait(10)
        for node in nodes:
            node.stop()
