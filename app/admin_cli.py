"""`liandong audit verify` and `liandong account create`: an administrator's tools that work on the
database directly (the embedded one is started for the while, or shared with a running server)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from app.config import Config
from base import audit
from base.accounts import Role, create_user
from base.database import EmbeddedPostgres, migrate, open_pool
from base.errors import DomainError
from base.signing import key_path, signing_key


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit_parser = commands.add_parser("audit", help="the audit log").add_subparsers(dest="audit_command",
                                                                                     required=True)
    verify = audit_parser.add_parser("verify", help="walk the audit log's hash chain and anchors; name the first"
                                                    " entry altered, removed or inserted")
    verify.add_argument("--key", type=Path, help="the centre's public key (GET /api/video/signing-key); without it"
                                                 " the key in the data folder is used")
    account = commands.add_parser("account", help="accounts").add_subparsers(dest="account_command", required=True)
    create = account.add_parser("create", help="create an account (the first administrator, say); the password is"
                                               " asked for, or read from standard input when it is not a terminal")
    create.add_argument("username")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--display-name", help="shown on screens (default: the user name)")
    create.add_argument("--subcentre", help="an operator's sub-centre, by its code")
    create.add_argument("--department", action="append", default=[],
                        help="limit a supervisor to this department (repeat for several)")


def run(args: argparse.Namespace, config: Config) -> int:
    if args.command == "audit":
        if args.key is not None:
            public = serialization.load_pem_public_key(args.key.read_bytes())
            if not isinstance(public, Ed25519PublicKey):
                print(f"{args.key}: not an Ed25519 public key", file=sys.stderr)
                return 2
        else:
            path = key_path(config.data_dir)
            if not path.exists():  # never make one here: anchors signed by a new key would all look forged
                print(f"liandong: {path} does not exist; pass the centre's public key with --key", file=sys.stderr)
                return 2
            public = signing_key(path).public_key()
        try:
            outside = audit.anchors_from_file(audit.anchors_file(config.data_dir))
        except audit.DamagedAnchors as error:
            print(f"ALTERED: {error}")
            return 1
        return asyncio.run(_verify(config, public, outside))
    return asyncio.run(_create_account(config, args))


@contextlib.asynccontextmanager
async def _database(config: Config) -> AsyncIterator[str]:
    if config.database.url:
        yield config.database.url
        return
    # Shared with a server running on this data folder; started (and stopped on exit) when there is none.
    yield await asyncio.to_thread(EmbeddedPostgres(config.data_dir).start)


async def _verify(config: Config, public: Ed25519PublicKey, outside: list[dict[str, Any]]) -> int:
    async with _database(config) as url, open_pool(url, 1, 1) as pool, pool.acquire() as connection:
        verdict = await audit.verify(connection, public, outside)
    for problem in verdict.problems:
        print(f"ALTERED: {problem}")
    print(f"{verdict.entries} entries, {verdict.anchors} anchors: "
          + ("intact" if verdict.intact else f"{len(verdict.problems)} problem(s), the first is above"))
    return 0 if verdict.intact else 1


async def _create_account(config: Config, args: argparse.Namespace) -> int:
    password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    from app.server import PACKAGES  # the whole application: only this command needs it

    async with _database(config) as url, open_pool(url, 1, 1) as pool:
        await migrate(pool, PACKAGES)  # the first administrator may come before the first start
        subcentre_id = None
        if args.subcentre:
            subcentre_id = await pool.fetchval("SELECT id FROM subcentres WHERE code = $1", args.subcentre)
            if subcentre_id is None:
                print(f"liandong: there is no sub-centre {args.subcentre!r}", file=sys.stderr)
                return 2
        try:
            user_id = await create_user(pool, args.username, args.display_name or args.username, password,
                                        Role(args.role), subcentre_id, args.department,
                                        audit.Actor(None, f"cli:{getpass.getuser()}", "local"))
        except DomainError as error:
            print(f"liandong: {error.field}: {error.message}", file=sys.stderr)
            return 2
    print(f"account {args.username!r} ({args.role}) created with id {user_id}")
    return 0
