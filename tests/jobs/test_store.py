"""The SQLite metadata store: schema versions, WAL, atomic transitions, ownership, listing."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from recbatch.jobs.errors import (
    LimitExceededException,
    ResourceAlreadyExistsException,
    ResourceInUseException,
    ResourceNotFoundException,
)
from recbatch.jobs.store import (
    DB_FILENAME,
    INFERENCE,
    MIGRATIONS,
    SCHEMA_VERSION,
    SEGMENT,
    STATUS_ACTIVE,
    STATUS_FAILED,
    STATUS_IN_PROGRESS,
    STATUS_PENDING,
    JobRow,
    Store,
    StoreError,
    WorkerIdentity,
)
from tests.jobs.control_helpers import create_request

RECIPE = "arn:aws:personalize:::recipe/aws-user-personalization"
ME = WorkerIdentity(worker_id="w1", host="h", pid=1, pid_token=None)
OTHER = WorkerIdentity(worker_id="w2", host="h", pid=2, pid_token=None)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with Store(tmp_path / "home") as s:
        yield s


def add_version(
    store: Store, region: str = "us-east-1", account: str = "000000000000", name: str = "sol"
) -> str:
    return store.insert_solution_version(
        region=region, account=account, solution_name=name, recipe_arn=RECIPE, model_path="/m.npz"
    ).arn


def add_job(
    store: Store, sv: str, name: str, *, kind: str = INFERENCE, region: str = "us-east-1", limit: int = 1000
) -> JobRow:
    arn = f"arn:aws:personalize:{region}:000000000000:{kind}/{name}"
    request = create_request(jobName=name, solutionVersionArn=sv, numResults=7)
    return store.insert_job(
        kind=kind,
        region=region,
        account="000000000000",
        name=name,
        arn=arn,
        request=request,
        max_queued_jobs=limit,
    )


def test_a_new_home_has_the_current_schema_in_wal_mode(tmp_path: Path) -> None:
    home = tmp_path / "new" / "home"
    with Store(home) as store:
        assert store.schema_version() == SCHEMA_VERSION == len(MIGRATIONS)
        assert (home / DB_FILENAME).exists()
    conn = sqlite3.connect(home / DB_FILENAME)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_reopening_keeps_data_and_the_token_secret(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        sv = add_version(store)
        secret = store.token_secret
    with Store(tmp_path) as store:
        assert store.get_solution_version(sv) is not None
        assert store.token_secret == secret
        assert len(secret) == 32


def test_a_home_from_a_newer_recbatch_is_refused(tmp_path: Path) -> None:
    Store(tmp_path).close()
    conn = sqlite3.connect(tmp_path / DB_FILENAME)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this recbatch knows"):
        Store(tmp_path)


def test_an_empty_database_file_is_migrated(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / DB_FILENAME).close()  # version 0, no tables
    with Store(tmp_path) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.count_jobs() == 0


def test_a_job_row_holds_the_full_request(store: Store) -> None:
    sv = add_version(store)
    row = add_job(store, sv, "j1")
    assert row.status == STATUS_PENDING
    assert row.request == create_request(jobName="j1", solutionVersionArn=sv, numResults=7)
    assert row.created_ms == row.updated_ms
    assert isinstance(row.created_ms, int)
    again = store.get_job(row.arn)
    assert again == row
    assert store.get_job(row.arn, SEGMENT) is None


def test_insert_checks_inside_its_transaction(store: Store) -> None:
    sv = add_version(store)
    with pytest.raises(ResourceNotFoundException, match="Could not find solution version"):
        add_job(store, sv + "x", "j")
    store.set_solution_version_status(sv, "CREATE IN_PROGRESS")
    with pytest.raises(ResourceInUseException, match="needs an ACTIVE solution version"):
        add_job(store, sv, "j")
    store.set_solution_version_status(sv, STATUS_ACTIVE)
    add_job(store, sv, "j")
    with pytest.raises(ResourceAlreadyExistsException, match="already exists"):
        add_job(store, sv, "j")
    # Same name, other kind or region: a different resource.
    add_job(store, sv, "j", kind=SEGMENT)
    add_job(store, sv, "j", region="eu-west-1")
    assert store.count_jobs() == 3


def test_names_are_never_reused_even_after_the_job_ended(store: Store) -> None:
    sv = add_version(store)
    row = add_job(store, sv, "j")
    claimed = store.claim_job(ME)
    assert claimed is not None
    store.finish_job(row.id, ME.worker_id, status=STATUS_FAILED, failure_reason="x")
    with pytest.raises(ResourceAlreadyExistsException):
        add_job(store, sv, "j")


def test_queued_job_limit(store: Store) -> None:
    sv = add_version(store)
    add_job(store, sv, "a", limit=2)
    add_job(store, sv, "b", limit=2)
    with pytest.raises(LimitExceededException, match="the limit is 2"):
        add_job(store, sv, "c", limit=2)
    assert store.count_jobs() == 2
    claimed = store.claim_job(ME)
    assert claimed is not None
    store.finish_job(claimed.id, ME.worker_id, status=STATUS_ACTIVE)
    add_job(store, sv, "c", limit=2)  # a finished job no longer counts


def test_claim_takes_the_oldest_pending_job_and_every_transition_moves_last_updated(store: Store) -> None:
    sv = add_version(store)
    first = add_job(store, sv, "first")
    add_job(store, sv, "second")
    claimed = store.claim_job(ME)
    assert claimed is not None
    assert claimed.arn == first.arn
    assert (claimed.status, claimed.worker_id, claimed.worker_host, claimed.worker_pid) == (
        STATUS_IN_PROGRESS,
        "w1",
        "h",
        1,
    )
    assert claimed.updated_ms > first.updated_ms
    assert store.requeue_job(claimed.id, ME.worker_id)
    requeued = store.get_job(first.arn)
    assert requeued is not None
    assert requeued.status == STATUS_PENDING
    assert requeued.worker_id is None
    assert requeued.updated_ms > claimed.updated_ms
    again = store.claim_job(ME, first.arn)
    assert again is not None
    assert store.update_progress(again.id, ME.worker_id, 10, 9, 1)
    progressed = store.get_job(first.arn)
    assert progressed is not None
    assert (progressed.records_read, progressed.records_written, progressed.records_failed) == (10, 9, 1)
    assert progressed.updated_ms == again.updated_ms  # progress is not a transition
    assert store.finish_job(again.id, ME.worker_id, status=STATUS_ACTIVE, counters=(12, 12, 2))
    done = store.get_job(first.arn)
    assert done is not None
    assert done.status == STATUS_ACTIVE
    assert (done.records_read, done.records_written, done.records_failed) == (12, 12, 2)
    assert done.updated_ms > again.updated_ms
    assert done.created_ms == first.created_ms


def test_a_worker_that_lost_a_job_changes_nothing(store: Store) -> None:
    sv = add_version(store)
    add_job(store, sv, "j")
    claimed = store.claim_job(ME)
    assert claimed is not None
    assert not store.finish_job(claimed.id, OTHER.worker_id, status=STATUS_ACTIVE)
    assert not store.heartbeat(claimed.id, OTHER.worker_id)
    assert not store.update_progress(claimed.id, OTHER.worker_id, 1, 1, 0)
    assert not store.requeue_job(claimed.id, OTHER.worker_id)
    row = store.get_job(claimed.arn)
    assert row is not None
    assert (row.status, row.worker_id, row.records_read) == (STATUS_IN_PROGRESS, "w1", 0)
    assert store.heartbeat(claimed.id, ME.worker_id)
    with pytest.raises(ValueError, match="not a final status"):
        store.finish_job(claimed.id, ME.worker_id, status=STATUS_PENDING)


def test_concurrent_claims_from_threads_never_share_a_job(store: Store) -> None:
    sv = add_version(store)
    for i in range(30):
        add_job(store, sv, f"j{i}")
    claimed: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def claim_all(n: int) -> None:
        me = WorkerIdentity(worker_id=f"t{n}", host="h", pid=n, pid_token=None)
        barrier.wait()
        while (row := store.claim_job(me)) is not None:
            with lock:
                claimed.append(row.arn)

    threads = [threading.Thread(target=claim_all, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted({*claimed})
    assert len(claimed) == 30
    assert store.count_jobs(STATUS_IN_PROGRESS) == 30


def test_recover_requeues_or_fails_dead_holders(store: Store) -> None:
    sv = add_version(store)
    for name in ("dead", "alive", "doomed"):
        add_job(store, sv, name)
        assert store.claim_job(ME) is not None
    # "doomed" has already been recovered twice before.
    conn = sqlite3.connect(store.path)
    conn.execute("UPDATE jobs SET recoveries = 2 WHERE name = 'doomed'")
    conn.commit()
    conn.close()

    def is_dead(row: JobRow) -> str | None:
        return None if row.name == "alive" else "worker gone"

    changed = store.recover_jobs(is_dead=is_dead, max_recoveries=3)
    assert sorted((row.name, status) for row, status in changed) == [
        ("dead", STATUS_PENDING),
        ("doomed", STATUS_FAILED),
    ]
    dead = store.get_job("arn:aws:personalize:us-east-1:000000000000:batch-inference-job/dead")
    doomed = store.get_job("arn:aws:personalize:us-east-1:000000000000:batch-inference-job/doomed")
    alive = store.get_job("arn:aws:personalize:us-east-1:000000000000:batch-inference-job/alive")
    assert dead is not None and doomed is not None and alive is not None
    assert (dead.status, dead.recoveries, dead.worker_id) == (STATUS_PENDING, 1, None)
    assert doomed.status == STATUS_FAILED
    assert doomed.failure_reason is not None
    assert "stopped unexpectedly 3 times (last: worker gone)" in doomed.failure_reason
    assert alive.status == STATUS_IN_PROGRESS
    # The dead holder's late finish is refused: the job is no longer its own.
    assert not store.finish_job(dead.id, ME.worker_id, status=STATUS_ACTIVE)


def test_list_jobs_newest_first_with_filters_and_scopes(store: Store) -> None:
    sv1 = add_version(store, name="one")
    sv2 = add_version(store, name="two")
    for i in range(5):
        add_job(store, sv1 if i % 2 == 0 else sv2, f"j{i}")
    add_job(store, sv1, "seg", kind=SEGMENT)
    add_job(store, sv1, "elsewhere", region="eu-west-1")

    def names(**kw: Any) -> list[str]:
        args: dict[str, Any] = {
            "kind": INFERENCE,
            "region": "us-east-1",
            "account": "000000000000",
            "solution_version_arn": None,
            "before_id": None,
            "limit": 100,
        }
        args.update(kw)
        return [r.name for r in store.list_jobs(**args)]

    assert names() == ["j4", "j3", "j2", "j1", "j0"]
    assert names(solution_version_arn=sv1) == ["j4", "j2", "j0"]
    assert names(limit=2) == ["j4", "j3"]
    before = store.list_jobs(
        kind=INFERENCE,
        region="us-east-1",
        account="000000000000",
        solution_version_arn=None,
        before_id=None,
        limit=2,
    )[-1].id
    assert names(before_id=before) == ["j2", "j1", "j0"]
    assert names(kind=SEGMENT) == ["seg"]
    assert names(region="eu-west-1") == ["elsewhere"]
    assert names(account="111111111111") == []


def test_solution_versions(store: Store) -> None:
    a = store.insert_solution_version(
        region="us-east-1",
        account="000000000000",
        solution_name="sol",
        recipe_arn=RECIPE,
        model_path="/a.npz",
    )
    b = store.insert_solution_version(
        region="us-east-1",
        account="000000000000",
        solution_name="sol",
        recipe_arn=RECIPE,
        model_path="/b.npz",
    )
    assert a.arn.startswith("arn:aws:personalize:us-east-1:000000000000:solution/sol/")
    assert len(a.version_id) == 8
    int(a.version_id, 16)
    assert a.arn != b.arn
    assert a.solution_arn == b.solution_arn == "arn:aws:personalize:us-east-1:000000000000:solution/sol"
    assert store.solution_exists(a.solution_arn)
    assert not store.solution_exists(a.solution_arn + "x")
    listed = store.list_solution_versions(
        region="us-east-1", account="000000000000", solution_arn=a.solution_arn, before_id=None, limit=10
    )
    assert [r.arn for r in listed] == [b.arn, a.arn]
    assert store.set_solution_version_status(a.arn, "CREATE FAILED", "bad")
    row = store.get_solution_version(a.arn)
    assert row is not None
    assert (row.status, row.failure_reason) == ("CREATE FAILED", "bad")
    assert row.updated_ms > a.updated_ms


def test_a_closed_store_refuses_use(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.count_jobs()
