"""`liandong balancer`: HAProxy in front of several Liandong nodes (one PostgreSQL behind them all).

Every node serves everything — any request, terminal, console or wall may reach any node: sessions,
tickets and camera claims live in the database, events fan out through it. The balancer's part:
- spread connections by how many each node holds (`leastconn`: terminals and walls stay connected
  for hours, so counting requests would pile them onto one node);
- check each node's /healthz every second and take one that fails twice out of rotation; its open
  connections are cut at once (`on-marked-down shutdown-sessions`) so their terminals reconnect
  elsewhere rather than wait on a half-dead node;
- a connection refused by a node that has just died is retried on another (`option redispatch`);
  a request the node may have started on is never resent (POST is not idempotent);
- WebSockets are tunnelled for up to an hour of silence (`timeout tunnel`; sockets ping every 15 s);
- the nodes' own routes (/internal/: relayed tiles and live streams) are refused to clients;
- each request carries X-Forwarded-For: list the balancer in every node's server.trusted_proxies.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CHECK_EVERY_MS = 1000
FALL = 2  # failed checks before a node is out (a dead node's connections drop at once in any case)
RISE = 2


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Address:
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{text!r} is not host:port")
        return cls(host, int(port))

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def haproxy_config(listen: Address, nodes: Sequence[Address], stats: Address | None = None) -> str:
    """The configuration HAProxy runs with (`haproxy -f`)."""
    if not nodes:
        raise ValueError("at least one node")
    servers = "\n".join(f"    server node{i} {node} check" for i, node in enumerate(nodes, 1))
    stats_section = (f"\nlisten stats\n    bind {stats}\n    stats enable\n    stats uri /\n"
                     if stats is not None else "")
    return f"""# Written by `liandong balancer`; see app/balancer.py for why each line is here.
global
    # no maxconn: HAProxy sizes it to the open-file limit it is given (two per connection)

defaults
    mode http
    option forwardfor
    option redispatch
    retries 3
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    timeout http-keep-alive 10s
    timeout http-request 10s

frontend liandong
    bind {listen}
    http-request deny deny_status 404 if {{ path_beg /internal/ }}
    default_backend nodes

backend nodes
    balance leastconn
    option httpchk GET /healthz
    http-check expect status 200
    default-server inter {CHECK_EVERY_MS}ms fastinter 500ms fall {FALL} rise {RISE} on-marked-down shutdown-sessions
{servers}
{stats_section}"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="liandong balancer",
                                     description="run HAProxy in front of Liandong nodes (see app/balancer.py)")
    parser.add_argument("--listen", default="0.0.0.0:8080", help="where clients connect (default 0.0.0.0:8080)")
    parser.add_argument("--node", action="append", required=True, help="a node's host:port; repeat for each")
    parser.add_argument("--stats", help="host:port for HAProxy's status page (default: none)")
    parser.add_argument("--write", type=Path, help="only write the configuration to this file")
    args = parser.parse_args(argv)
    try:
        text = haproxy_config(Address.parse(args.listen), [Address.parse(n) for n in args.node],
                              Address.parse(args.stats) if args.stats else None)
    except ValueError as error:
        print(f"liandong balancer: {error}", file=sys.stderr)
        return 2
    if args.write is not None:
        args.write.write_text(text, encoding="utf-8")
        return 0
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(haproxy).exists():
        print("liandong balancer: HAProxy is not installed (scripts/balancer installs it)", file=sys.stderr)
        return 2
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"liandong-haproxy-{os.getpid()}.cfg"
    path.write_text(text, encoding="utf-8")
    print(f"liandong balancer: {args.listen} -> {', '.join(args.node)} (configuration in {path})", file=sys.stderr)
    os.execv(haproxy, [haproxy, "-db", "-f", str(path)])  # foreground; stops with this command


if __name__ == "__main__":
    sys.exit(main())
