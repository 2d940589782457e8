"""The metadata store: one SQLite database per home, in WAL mode, shared by every process using that home.

What makes it safe for several processes (clients, workers, the server) at once:

* every write, and every status transition, is one ``BEGIN IMMEDIATE`` transaction, so SQLite serialises
  writers and each transition is all or nothing;
* a job is claimed by an ``UPDATE ... WHERE status = 'CREATE PENDING'`` inside that transaction, so two
  workers never run the same job, and every later transition of a running job is conditional on the
  claiming worker still owning it;
* job names are a UNIQUE key, so of two processes creating the same name exactly one wins.

The schema is versioned with ``PRAGMA user_version``; :data:`MIGRATIONS` upgrades an older home in place and a
home written by a newer recbatch is refused rather than misread. WAL needs a local file system (not NFS).
Timestamps are integers in milliseconds since the epoch.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recbatch.jobs.errors import (
    LimitExceededException,
    ResourceAlreadyExistsException,
    ResourceInUseException,
    ResourceNotFoundException,
)

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "DB_FILENAME",
    "INFERENCE",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SEGMENT",
    "STATUS_ACTIVE",
    "STATUS_FAILED",
    "STATUS_IN_PROGRESS",
    "STATUS_PENDING",
    "JobRow",
    "SolutionVersionRow",
    "Store",
    "StoreError",
    "now_ms",
]

DB_FILENAME = "recbatch.sqlite3"

STATUS_PENDING = "CREATE PENDING"
STATUS_IN_PROGRESS = "CREATE IN_PROGRESS"
STATUS_ACTIVE = "ACTIVE"
STATUS_FAILED = "CREATE FAILED"

#: Job kinds, as they appear in ARNs.
INFERENCE = "batch-inference-job"
SEGMENT = "batch-segment-job"


class StoreError(Exception):
    """The database cannot be used (for example: written by a newer recbatch)."""


def now_ms() -> int:
    """Wall-clock time in whole milliseconds, the precision of every stored timestamp."""
    return time.time_ns() // 1_000_000


# ---------------------------------------------------------------------------------------------- schema


def _migrate_to_1(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
    # The key of the HMAC that signs nextTokens, so that a token this home did not issue is recognised.
    conn.execute("INSERT INTO meta (key, value) VALUES ('token_secret', ?)", (secrets.token_bytes(32),))
    conn.execute(
        """CREATE TABLE solution_versions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            arn TEXT NOT NULL UNIQUE,
            region TEXT NOT NULL,
            account TEXT NOT NULL,
            solution_name TEXT NOT NULL,
            solution_arn TEXT NOT NULL,
            version_id TEXT NOT NULL,
            recipe_arn TEXT NOT NULL,
            model_path TEXT NOT NULL,
            status TEXT NOT NULL,
            failure_reason TEXT,
            created_ms INTEGER NOT NULL,
            updated_ms INTEGER NOT NULL
        )"""
    )
    conn.execute(
        "CREATE INDEX solution_versions_list ON solution_versions (region, account, solution_arn, id)"
    )
    conn.execute(
        f"""CREATE TABLE jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL CHECK (kind IN ('{INFERENCE}', '{SEGMENT}')),
            region TEXT NOT NULL,
            account TEXT NOT NULL,
            name TEXT NOT NULL,
            arn TEXT NOT NULL UNIQUE,
            solution_version_arn TEXT NOT NULL,
            request TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN
                ('{STATUS_PENDING}', '{STATUS_IN_PROGRESS}', '{STATUS_ACTIVE}', '{STATUS_FAILED}')),
            failure_reason TEXT,
            created_ms INTEGER NOT NULL,
            updated_ms INTEGER NOT NULL,
            records_read INTEGER NOT NULL DEFAULT 0,
            records_written INTEGER NOT NULL DEFAULT 0,
            records_failed INTEGER NOT NULL DEFAULT 0,
            worker_id TEXT,
            worker_host TEXT,
            worker_pid INTEGER,
            worker_pid_token TEXT,
            heartbeat_ms INTEGER,
            recoveries INTEGER NOT NULL DEFAULT 0,
            UNIQUE (region, account, kind, name)
        )"""
    )
    conn.execute("CREATE INDEX jobs_list ON jobs (region, account, kind, id)")
    conn.execute("CREATE INDEX jobs_by_status ON jobs (status, id)")


#: MIGRATIONS[i] takes a database from schema version i to i + 1, inside the caller's transaction.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_to_1]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to :data:`SCHEMA_VERSION` in one transaction; return the version found."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"this recbatch home has schema version {found}, newer than this recbatch knows "
                f"({SCHEMA_VERSION}); upgrade recbatch"
            )
        for step in MIGRATIONS[found:]:
            step(conn)
        if found != SCHEMA_VERSION:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found


# ------------------------------------------------------------------------------------------------ rows


@dataclass(frozen=True)
class SolutionVersionRow:
    """A registered model."""

    id: int
    arn: str
    region: str
    account: str
    solution_name: str
    solution_arn: str
    version_id: str
    recipe_arn: str
    model_path: str
    status: str
    failure_reason: str | None
    created_ms: int
    updated_ms: int


@dataclass(frozen=True)
class JobRow:
    """A batch inference or segment job; ``request`` is the create request as validated and stored."""

    id: int
    kind: str
    region: str
    account: str
    name: str
    arn: str
    solution_version_arn: str
    request: dict[str, Any]
    status: str
    failure_reason: str | None
    created_ms: int
    updated_ms: int
    records_read: int
    records_written: int
    records_failed: int
    worker_id: str | None
    worker_host: str | None
    worker_pid: int | None
    worker_pid_token: str | None
    heartbeat_ms: int | None
    recoveries: int


_SV_COLUMNS = ", ".join(SolutionVersionRow.__dataclass_fields__)
_JOB_COLUMNS = ", ".join(JobRow.__dataclass_fields__)


def _sv_row(row: tuple[Any, ...]) -> SolutionVersionRow:
    return SolutionVersionRow(*row)


def _job_row(row: tuple[Any, ...]) -> JobRow:
    values = list(row)
    values[7] = json.loads(values[7])  # request
    return JobRow(*values)


@dataclass(frozen=True)
class WorkerIdentity:
    """Who holds a running job: enough for another process to tell whether the holder still lives."""

    worker_id: str
    host: str
    pid: int
    pid_token: str | None


# ----------------------------------------------------------------------------------------------- store


class Store:
    """The metadata of one home. Thread-safe: each thread gets its own SQLite connection."""

    def __init__(self, home: str | os.PathLike[str]) -> None:
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = self.home / DB_FILENAME
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        try:
            conn = self._conn()
            conn.execute("PRAGMA journal_mode = WAL")
            migrate(conn)
            self._token_secret: bytes = conn.execute(
                "SELECT value FROM meta WHERE key = 'token_secret'"
            ).fetchone()[0]
        except BaseException:
            self.close()
            raise

    # -- connections

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError("the store is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        # A connection must never cross a fork; a child process opens its own.
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            # isolation_level=None: no implicit transactions; every write below opens its own explicitly.
            conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA foreign_keys = ON")
            self._local.conn = conn
            self._local.pid = os.getpid()
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken before any read so that read-then-write decisions stay true."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        """Close every connection this store opened (in any thread)."""
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def token_secret(self) -> bytes:
        """The key that signs this home's nextTokens."""
        return self._token_secret

    def schema_version(self) -> int:
        """The schema version of the database file."""
        return int(self._conn().execute("PRAGMA user_version").fetchone()[0])

    # -- solution versions

    def insert_solution_version(
        self,
        *,
        region: str,
        account: str,
        solution_name: str,
        recipe_arn: str,
        model_path: str,
        status: str = STATUS_ACTIVE,
    ) -> SolutionVersionRow:
        """Register a model under a fresh 8-hex-digit version id; returns the stored row."""
        solution_arn = f"arn:aws:personalize:{region}:{account}:solution/{solution_name}"
        with self._write() as conn:
            while True:
                version_id = secrets.token_hex(4)
                arn = f"{solution_arn}/{version_id}"
                if conn.execute("SELECT 1 FROM solution_versions WHERE arn = ?", (arn,)).fetchone() is None:
                    break
            t = now_ms()
            conn.execute(
                """INSERT INTO solution_versions (arn, region, account, solution_name, solution_arn, version_id,
                   recipe_arn, model_path, status, created_ms, updated_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?)""",
                (
                    arn,
                    region,
                    account,
                    solution_name,
                    solution_arn,
                    version_id,
                    recipe_arn,
                    model_path,
                    status,
                    t,
                    t,
                ),
            )
            row = conn.execute(
                f"SELECT {_SV_COLUMNS} FROM solution_versions WHERE arn = ?", (arn,)
            ).fetchone()
        return _sv_row(row)

    def get_solution_version(self, arn: str) -> SolutionVersionRow | None:
        """A solution version by ARN (the ARN names its region and account)."""
        row = (
            self._conn()
            .execute(f"SELECT {_SV_COLUMNS} FROM solution_versions WHERE arn = ?", (arn,))
            .fetchone()
        )
        return None if row is None else _sv_row(row)

    def set_solution_version_status(self, arn: str, status: str, failure_reason: str | None = None) -> bool:
        """Change a solution version's status (an administrative operation: jobs need ACTIVE)."""
        with self._write() as conn:
            cur = conn.execute(
                """UPDATE solution_versions SET status = ?, failure_reason = ?, updated_ms = MAX(?, updated_ms + 1)
                   WHERE arn = ?""",
                (status, failure_reason, now_ms(), arn),
            )
        return cur.rowcount == 1

    def solution_exists(self, solution_arn: str) -> bool:
        """Whether any version of this solution is registered."""
        row = (
            self._conn()
            .execute("SELECT 1 FROM solution_versions WHERE solution_arn = ? LIMIT 1", (solution_arn,))
            .fetchone()
        )
        return row is not None

    def list_solution_versions(
        self, *, region: str, account: str, solution_arn: str | None, before_id: int | None, limit: int
    ) -> list[SolutionVersionRow]:
        """Newest first, ``limit`` rows with id below ``before_id``."""
        sql = f"SELECT {_SV_COLUMNS} FROM solution_versions WHERE region = ? AND account = ?"
        rows = self._newest_first(sql, [region, account], ("solution_arn", solution_arn), before_id, limit)
        return [_sv_row(r) for r in rows]

    def _newest_first(
        self, sql: str, args: list[Any], match: tuple[str, str | None], before_id: int | None, limit: int
    ) -> list[Any]:
        """One page of a listing: ``sql``'s rows, optionally where ``match`` holds, below ``before_id``."""
        column, value = match
        if value is not None:
            sql += f" AND {column} = ?"
            args = [*args, value]
        if before_id is not None:
            sql += " AND id < ?"
            args = [*args, before_id]
        return list(self._conn().execute(sql + " ORDER BY id DESC LIMIT ?", [*args, limit]))

    # -- jobs: the control plane

    def insert_job(
        self,
        *,
        kind: str,
        region: str,
        account: str,
        name: str,
        arn: str,
        request: Mapping[str, Any],
        max_queued_jobs: int,
    ) -> JobRow:
        """Store a new job as CREATE PENDING.

        Inside one transaction: the solution version must exist and be ACTIVE, fewer than
        ``max_queued_jobs`` jobs of this region and account may be pending or running, and the name
        must be new. Raises the matching Personalize error otherwise.
        """
        solution_version_arn = request["solutionVersionArn"]
        body = json.dumps(request, separators=(",", ":"), sort_keys=True)
        with self._write() as conn:
            sv = conn.execute(
                "SELECT status FROM solution_versions WHERE arn = ?", (solution_version_arn,)
            ).fetchone()
            if sv is None:
                raise ResourceNotFoundException(f"Could not find solution version {solution_version_arn}")
            if sv[0] != STATUS_ACTIVE:
                raise ResourceInUseException(
                    f"Solution version {solution_version_arn} is {sv[0]}; a job needs an ACTIVE solution version"
                )
            queued = conn.execute(
                "SELECT COUNT(*) FROM jobs WHERE status IN (?, ?) AND region = ? AND account = ?",
                (STATUS_PENDING, STATUS_IN_PROGRESS, region, account),
            ).fetchone()[0]
            if queued >= max_queued_jobs:
                raise LimitExceededException(
                    f"{queued} jobs are pending or in progress; the limit is {max_queued_jobs} "
                    f"(max_queued_jobs). Wait for some to finish"
                )
            t = now_ms()
            try:
                conn.execute(
                    """INSERT INTO jobs (kind, region, account, name, arn, solution_version_arn, request, status,
                       created_ms, updated_ms) VALUES (?,?,?,?,?,?,?,?,?,?)""",
                    (kind, region, account, name, arn, solution_version_arn, body, STATUS_PENDING, t, t),
                )
            except sqlite3.IntegrityError:
                # The UNIQUE keys: the name (and so the ARN) exists. Names are never reused.
                raise ResourceAlreadyExistsException(f"{_kind_words(kind)} {arn} already exists") from None
            row = conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE arn = ?", (arn,)).fetchone()
        return _job_row(row)

    def get_job(self, arn: str, kind: str | None = None) -> JobRow | None:
        """A job by ARN (and kind, when given)."""
        sql = f"SELECT {_JOB_COLUMNS} FROM jobs WHERE arn = ?"
        args: list[Any] = [arn]
        if kind is not None:
            sql += " AND kind = ?"
            args.append(kind)
        row = self._conn().execute(sql, args).fetchone()
        return None if row is None else _job_row(row)

    def list_jobs(
        self,
        *,
        kind: str,
        region: str,
        account: str,
        solution_version_arn: str | None,
        before_id: int | None,
        limit: int,
    ) -> list[JobRow]:
        """Newest first (by creation order), ``limit`` rows with id below ``before_id``."""
        sql = f"SELECT {_JOB_COLUMNS} FROM jobs WHERE kind = ? AND region = ? AND account = ?"
        match = ("solution_version_arn", solution_version_arn)
        return [
            _job_row(r) for r in self._newest_first(sql, [kind, region, account], match, before_id, limit)
        ]

    # -- jobs: the worker's transitions

    def claim_job(self, worker: WorkerIdentity, arn: str | None = None) -> JobRow | None:
        """Move the oldest pending job (or the pending job ``arn``) to CREATE IN_PROGRESS, owned by ``worker``."""
        with self._write() as conn:
            sql = "SELECT id FROM jobs WHERE status = ?"
            args: list[Any] = [STATUS_PENDING]
            if arn is not None:
                sql += " AND arn = ?"
                args.append(arn)
            found = conn.execute(sql + " ORDER BY id LIMIT 1", args).fetchone()
            if found is None:
                return None
            t = now_ms()
            conn.execute(
                """UPDATE jobs SET status = ?, updated_ms = MAX(?, updated_ms + 1), worker_id = ?, worker_host = ?,
                   worker_pid = ?, worker_pid_token = ?, heartbeat_ms = ?, failure_reason = NULL,
                   records_read = 0, records_written = 0, records_failed = 0
                   WHERE id = ? AND status = ?""",
                (
                    STATUS_IN_PROGRESS,
                    t,
                    worker.worker_id,
                    worker.host,
                    worker.pid,
                    worker.pid_token,
                    t,
                    found[0],
                    STATUS_PENDING,
                ),
            )
            row = conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (found[0],)).fetchone()
        return _job_row(row)

    def heartbeat(self, job_id: int, worker_id: str) -> bool:
        """Refresh the heartbeat of a running job; False when ``worker_id`` no longer owns it."""
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE jobs SET heartbeat_ms = ? WHERE id = ? AND status = ? AND worker_id = ?",
                (now_ms(), job_id, STATUS_IN_PROGRESS, worker_id),
            )
        return cur.rowcount == 1

    def update_progress(self, job_id: int, worker_id: str, read: int, written: int, failed: int) -> bool:
        """Record progress counters (not a transition: lastUpdatedDateTime stays); False if not owned."""
        with self._write() as conn:
            cur = conn.execute(
                """UPDATE jobs SET records_read = ?, records_written = ?, records_failed = ?, heartbeat_ms = ?
                   WHERE id = ? AND status = ? AND worker_id = ?""",
                (read, written, failed, now_ms(), job_id, STATUS_IN_PROGRESS, worker_id),
            )
        return cur.rowcount == 1

    def finish_job(
        self,
        job_id: int,
        worker_id: str,
        *,
        status: str,
        failure_reason: str | None = None,
        counters: tuple[int, int, int] | None = None,
    ) -> bool:
        """End a running job ACTIVE or CREATE FAILED; False (and nothing changed) if not owned."""
        if status not in (STATUS_ACTIVE, STATUS_FAILED):
            raise ValueError(f"not a final status: {status}")
        sets = "status = ?, failure_reason = ?, updated_ms = MAX(?, updated_ms + 1), heartbeat_ms = NULL"
        args: list[Any] = [status, failure_reason, now_ms()]
        if counters is not None:
            sets += ", records_read = ?, records_written = ?, records_failed = ?"
            args.extend(counters)
        with self._write() as conn:
            cur = conn.execute(
                f"UPDATE jobs SET {sets} WHERE id = ? AND status = ? AND worker_id = ?",
                [*args, job_id, STATUS_IN_PROGRESS, worker_id],
            )
        return cur.rowcount == 1

    def requeue_job(self, job_id: int, worker_id: str) -> bool:
        """Put a running job back to CREATE PENDING (it will rerun from the start); False if not owned."""
        with self._write() as conn:
            cur = conn.execute(
                f"""UPDATE jobs SET {_REQUEUE_SETS} WHERE id = ? AND status = ? AND worker_id = ?""",
                (STATUS_PENDING, now_ms(), job_id, STATUS_IN_PROGRESS, worker_id),
            )
        return cur.rowcount == 1

    def recover_jobs(
        self,
        *,
        is_dead: Callable[[JobRow], str | None],
        max_recoveries: int,
    ) -> list[tuple[JobRow, str]]:
        """Requeue (or fail) every running job whose worker is dead, in one transaction.

        ``is_dead(row)`` returns why the holder of a running job is presumed dead, or None. A job is
        requeued unless this is its ``max_recoveries``-th recovery, in which case it is failed with a
        reason naming the cause. Returns (row before, new status) for each job changed.
        """
        changed: list[tuple[JobRow, str]] = []
        with self._write() as conn:
            rows = [
                _job_row(r)
                for r in conn.execute(
                    f"SELECT {_JOB_COLUMNS} FROM jobs WHERE status = ?", (STATUS_IN_PROGRESS,)
                )
            ]
            for row in rows:
                why = is_dead(row)
                if why is None:
                    continue
                t = now_ms()
                if row.recoveries + 1 >= max_recoveries:
                    reason = (
                        f"The worker running this job stopped unexpectedly {row.recoveries + 1} times "
                        f"(last: {why}); the job was not retried again. Check the input size and the "
                        f"memory available to the worker, then create a new job"
                    )
                    conn.execute(
                        """UPDATE jobs SET status = ?, failure_reason = ?, updated_ms = MAX(?, updated_ms + 1),
                           heartbeat_ms = NULL, recoveries = recoveries + 1 WHERE id = ? AND status = ?""",
                        (STATUS_FAILED, reason, t, row.id, STATUS_IN_PROGRESS),
                    )
                    changed.append((row, STATUS_FAILED))
                else:
                    conn.execute(
                        f"""UPDATE jobs SET {_REQUEUE_SETS}, recoveries = recoveries + 1
                            WHERE id = ? AND status = ?""",
                        (STATUS_PENDING, t, row.id, STATUS_IN_PROGRESS),
                    )
                    changed.append((row, STATUS_PENDING))
        return changed

    def count_jobs(self, status: str | None = None) -> int:
        """How many jobs (with this status) the home holds, all regions and accounts."""
        if status is None:
            return int(self._conn().execute("SELECT COUNT(*) FROM jobs").fetchone()[0])
        return int(
            self._conn().execute("SELECT COUNT(*) FROM jobs WHERE status = ?", (status,)).fetchone()[0]
        )


_REQUEUE_SETS = (
    "status = ?, updated_ms = MAX(?, updated_ms + 1), worker_id = NULL, worker_host = NULL, worker_pid = NULL, "
    "worker_pid_token = NULL, heartbeat_ms = NULL, records_read = 0, records_written = 0, records_failed = 0"
)


def _kind_words(kind: str) -> str:
    return "Batch inference job" if kind == INFERENCE else "Batch segment job"
