"""The command line: `liandong backup` and `liandong restore`."""

from __future__ import annotations

import argparse
import sys

import asyncpg

from app.backup.archive import BackupError, folder_of
from app.backup.restore import restore
from app.backup.take import backup
from base.settings import ConfigError


def command(args: argparse.Namespace) -> int:
    """`liandong backup [--to PATH] [--with-recordings]` and `liandong restore ARCHIVE`."""
    from app.config import load

    try:
        config = load(args.config)
    except ConfigError as error:
        print(f"liandong: configuration error: {error}", file=sys.stderr)
        return 2
    try:
        if args.command == "backup":
            backup(config, args.to or folder_of(config), args.with_recordings)
        else:
            restore(args.archive, config)
    # OSError: a full disk, a permission, a database out of reach; its message names the file or address.
    except (BackupError, asyncpg.PostgresError, OSError) as error:
        print(f"liandong {args.command}: {error}", file=sys.stderr)
        return 1
    return 0
