"""The DuckDB file's journal: records framed by length and CRC, replayed on open, idempotent.

The crash tests kill a real process with SIGKILL (no mocks): at a random moment after a write
was reported durable, and at the journal's own crash points (a torn append, after an append,
between a checkpoint's commit and emptying the journal, in the middle of a replay).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aipartnerupflow.core.errors import StorageError, TaskAlreadyExistsError
from aipartnerupflow.core.models import TaskModel
from aipartnerupflow.core.storage import create_session
from aipartnerupflow.core.storage.journal import MAGIC, Journal, journal_path
from aipartnerupflow.core.storage.sql_store import SqlTaskStorage

WRITER = textwrap.dedent("""
    import asyncio, os, signal, sys
    from datetime import UTC, datetime
    from aipartnerupflow.core.models import TaskModel
    from aipartnerupflow.core.storage import create_session

    async def main():
        url, n, how = sys.argv[1], int(sys.argv[2]), sys.argv[3]
        store = create_session(url)
        await store.initialize()
        await store.insert_tasks([TaskModel(name=f"t{i}", id=f"t{i}") for i in range(n)])
        for i in range(n):
            now = datetime.now(UTC)
            failed = await store.write_ahead(
                {f"t{i}": {"status": "in_progress", "attempts": 1, "started_at": now}}
            )
            assert failed == {}, failed
            store.write_behind(f"t{i}", {"status": "completed", "result": {"i": i}})
        await store.flush()
        print("durable", flush=True)
        if how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        await store.close()  # a crash point may end the process in here

    asyncio.run(main())
""")


def _run_writer(tmp_path: Path, url: str, n: int, how: str, crash_at: str | None = None) -> str:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {k: v for k, v in os.environ.items() if k != "_APFLOW_CRASH_AT"}
    if crash_at:
        env["_APFLOW_CRASH_AT"] = crash_at
    proc = subprocess.run(
        [sys.executable, str(script), url, str(n), how],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return f"{proc.returncode}|{proc.stdout}|{proc.stderr}"


async def _rows(url: str) -> dict[str, TaskModel]:
    store = create_session(url)
    try:
        return await _all(store)
    finally:
        await store.close()


async def _all(store: object) -> dict[str, TaskModel]:
    assert isinstance(store, SqlTaskStorage)
    from aipartnerupflow.core.storage.base import TaskQuery

    return {t.id: t for t in await store.list_tasks(TaskQuery(limit=100_000))}


def _records(path: Path) -> int:
    journal = Journal(str(path))
    try:
        return len(journal.open())
    finally:
        journal.close()


def _frame(payload: bytes) -> bytes:
    return struct.pack(">II", len(payload), zlib.crc32(payload)) + payload


# -- the file format -------------------------------------------------------------------------


def test_records_round_trip_and_a_torn_last_record_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "j"
    journal = Journal(str(path))
    assert journal.open() == []
    journal.append(b'{"u":{"a":{"status":"x"}}}')
    journal.append(b'{"u":{"b":{"status":"y"}}}')
    journal.close()
    whole = path.read_bytes()
    torn = _frame(b'{"u":{"c":{"status":"z"}}}')
    for cut in (1, 7, 8, len(torn) - 1):  # inside the header, at its end, inside the payload
        path.write_bytes(whole + torn[:cut])
        again = Journal(str(path))
        assert [list(p["u"]) for p in again.open()] == [["a"], ["b"]]
        again.close()
        assert path.read_bytes() == whole  # the torn tail is cut off, the rest kept


def test_a_record_with_a_wrong_checksum_ends_the_readable_part(tmp_path: Path) -> None:
    path = tmp_path / "j"
    good = _frame(b'{"u":{"a":{}}}')
    bad = bytearray(_frame(b'{"u":{"b":{}}}'))
    bad[-2] ^= 0xFF  # one flipped byte in the payload
    path.write_bytes(MAGIC + good + bytes(bad) + _frame(b'{"u":{"c":{}}}'))
    journal = Journal(str(path))
    assert [list(p["u"]) for p in journal.open()] == [["a"]]
    journal.close()


def test_a_foreign_file_where_the_journal_belongs_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "j"
    path.write_bytes(b"something else entirely\n")
    with pytest.raises(StorageError, match="not an aipartnerupflow journal"):
        Journal(str(path)).open()


# -- the store -------------------------------------------------------------------------------


async def test_writes_are_journaled_and_the_journal_is_empty_after_close(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    store = create_session(f"duckdb:///{db}")
    await store.insert_tasks([TaskModel(name="a", id="a")])
    now = datetime.now(UTC)
    assert await store.write_ahead({"a": {"status": "in_progress", "started_at": now}}) == {}
    assert _records(Path(journal_path(str(db)))) == 2  # the insert, the start
    got = await store.get_task("a")  # reads see journaled changes
    assert got is not None and got.status == "in_progress" and got.started_at == now
    await store.close()
    assert Path(journal_path(str(db))).read_bytes() == MAGIC


async def test_kill_9_after_durable_writes_another_process_sees_them(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    url = f"duckdb:///{db}"
    out = _run_writer(tmp_path, url, 50, "kill")
    assert out.startswith(f"{-signal.SIGKILL}|durable"), out
    assert _records(Path(journal_path(str(db)))) > 0  # the file alone does not hold them
    rows = await _rows(url)  # this process opens the file: the journal is replayed
    assert sorted(rows) == sorted(f"t{i}" for i in range(50))
    assert all(t.status == "completed" and t.attempts == 1 for t in rows.values())
    assert rows["t7"].result == {"i": 7}
    assert Path(journal_path(str(db))).read_bytes() == MAGIC


async def test_replaying_the_same_journal_twice_gives_the_same_rows(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    url = f"duckdb:///{db}"
    out = _run_writer(tmp_path, url, 20, "kill")
    assert out.startswith(f"{-signal.SIGKILL}|"), out
    saved = Path(journal_path(str(db))).read_bytes()
    first = await _rows(url)
    Path(journal_path(str(db))).write_bytes(saved)  # a crash before the journal was emptied
    second = await _rows(url)
    assert {i: (t.status, t.attempts, t.result) for i, t in first.items()} == {
        i: (t.status, t.attempts, t.result) for i, t in second.items()
    }
    assert len(second) == 20


@pytest.mark.parametrize(
    "crash_at",
    [
        "journal.torn:3",
        "journal.appended:5",
        "journal.checkpoint.committed:1",
    ],
)
async def test_crash_points_of_the_journal_lose_nothing_reported_durable(
    tmp_path: Path, crash_at: str
) -> None:
    db = tmp_path / "t.duckdb"
    url = f"duckdb:///{db}"
    out = _run_writer(tmp_path, url, 30, "close", crash_at=crash_at)
    assert out.startswith(f"{-signal.SIGKILL}|"), out
    durable = "|durable" in out
    rows = await _rows(url)
    if durable:  # everything was reported durable before the crash
        assert len(rows) == 30 and all(t.status == "completed" for t in rows.values())
    else:
        # Died before: the insert (the first record) is there or not at all, and every row
        # has a state it was given (never half a batch).
        assert len(rows) in (0, 30)
        assert {t.status for t in rows.values()} <= {"pending", "in_progress", "completed"}


async def test_a_crash_in_the_middle_of_a_replay_is_replayed_again(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    url = f"duckdb:///{db}"
    assert _run_writer(tmp_path, url, 25, "kill").startswith(f"{-signal.SIGKILL}|durable")
    for point in ("journal.replay.applied:1", "journal.replay.committed:1"):
        reader = tmp_path / "reader.py"
        reader.write_text(
            "import asyncio, sys\nfrom aipartnerupflow.core.storage import create_session\n"
            "asyncio.run(create_session(sys.argv[1]).initialize())\n"
        )
        env = {**os.environ, "_APFLOW_CRASH_AT": point}
        proc = subprocess.run([sys.executable, str(reader), url], env=env, timeout=60)
        assert proc.returncode == -signal.SIGKILL
    rows = await _rows(url)
    assert len(rows) == 25 and all(t.status == "completed" for t in rows.values())


async def test_a_duplicate_insert_fails_alone_and_keeps_journaled_changes(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    store = create_session(f"duckdb:///{db}")
    await store.insert_tasks([TaskModel(name="a", id="a")])
    store.write_behind("a", {"status": "completed"})
    with pytest.raises(TaskAlreadyExistsError):
        await store.insert_tasks([TaskModel(name="b", id="b"), TaskModel(name="a2", id="a")])
    got = await store.get_task("a")
    assert got is not None and got.status == "completed"
    assert await store.get_task("b") is None  # nothing of the failed insert
    await store.close()
    again = create_session(f"duckdb:///{db}")
    assert [t.id for t in (await _all(again)).values()] == ["a"]
    await again.close()


async def test_read_only_open_refuses_a_journal_not_yet_applied(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    url = f"duckdb:///{db}"
    assert _run_writer(tmp_path, url, 5, "kill").startswith(f"{-signal.SIGKILL}|durable")
    copy = tmp_path / "copy.duckdb"
    for suffix in ("", ".wal", ".journal"):
        if Path(f"{db}{suffix}").exists():
            shutil.copy(f"{db}{suffix}", f"{copy}{suffix}")
    ro = create_session(f"duckdb:///{copy}", connect_args={"config": {"access_mode": "READ_ONLY"}})
    with pytest.raises(StorageError, match="journaled changes"):
        await ro.initialize()
    await ro.close()
    assert len(await _rows(f"duckdb:///{copy}")) == 5  # read-write open applies them


async def test_a_value_no_store_holds_fails_only_its_row(tmp_path: Path) -> None:
    store = create_session(f"duckdb:///{tmp_path / 't.duckdb'}")
    await store.insert_tasks([TaskModel(name=n, id=n) for n in ("a", "b")])
    failed = await store.write_ahead(
        {"a": {"status": "completed", "result": {"x": float("nan")}}, "b": {"status": "completed"}}
    )
    assert list(failed) == ["a"] and "could not be stored" in failed["a"]
    rows = await _all(store)
    assert rows["a"].status == "failed" and rows["b"].status == "completed"
    await store.close()


def test_the_journal_payload_is_json(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path / "j"))
    journal.open()
    journal.append(json.dumps({"u": {}}).encode())
    assert journal.read() == [{"u": {}}]
    journal.close()


async def test_two_stores_of_one_process_on_one_file_see_each_others_writes(
    tmp_path: Path,
) -> None:
    db = tmp_path / "t.duckdb"
    first = create_session(f"duckdb:///{db}")
    await first.insert_tasks([TaskModel(name="a", id="a")])
    first.write_behind("a", {"status": "in_progress"})
    await first.flush()  # durable in the journal, not yet committed to the file
    second = create_session(f"duckdb:///{db}")  # DuckDB allows this within one process
    got = await second.get_task("a")
    assert got is not None and got.status == "in_progress"
    assert await second.update_task("a", {"status": "completed"})  # no conflict
    first.write_behind("a", {"progress": 0.5})
    await first.flush()
    got = await second.get_task("a")
    assert got is not None and (got.status, got.progress) == ("completed", 0.5)
    await second.close()
    assert not Path(journal_path(str(db))).exists() or _records(Path(journal_path(str(db)))) == 0
    await first.close()


async def test_a_journaled_value_the_file_refuses_fails_only_its_row(tmp_path: Path) -> None:
    store = create_session(f"duckdb:///{tmp_path / 't.duckdb'}")
    await store.insert_tasks([TaskModel(name=n, id=n) for n in ("a", "b")])
    # JSON holds it, so the journal takes it; DuckDB cannot cast it to INTEGER when applying.
    failed = await store.write_ahead(
        {"a": {"attempts": "not a number"}, "b": {"status": "completed", "attempts": 1}}
    )
    assert failed == {}
    rows = await _all(store)  # the read applies the batch, which fails, and is isolated
    assert rows["a"].status == "failed" and "could not be stored" in (rows["a"].error or "")
    assert (rows["b"].status, rows["b"].attempts) == ("completed", 1)
    await store.close()
    again = create_session(f"duckdb:///{tmp_path / 't.duckdb'}")
    assert (await _all(again))["b"].status == "completed"
    await again.close()


# -- create_task: one journal record per call, applied to the file by the next read ------------

CREATOR = textwrap.dedent("""
    import asyncio, os, signal, sys
    from aipartnerupflow import TaskManager, create_session

    async def main():
        url, n = sys.argv[1], int(sys.argv[2])
        store = create_session(url)
        repo = TaskManager(store).task_repository
        root = await repo.create_task("root", user_id="u")
        print("created", root.id, flush=True)
        for i in range(n):
            child = await repo.create_task(f"c{i}", user_id="u", parent_id=root.id)
            grandchild = await repo.create_task(f"g{i}", parent_id=child.id, id=f"g{i}")
            print("created", child.id, grandchild.id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # nothing was read, checkpointed or closed

    asyncio.run(main())
""")


async def test_created_tasks_survive_kill_9_with_their_tree_links(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    script = tmp_path / "creator.py"
    script.write_text(CREATOR)
    proc = subprocess.run(
        [sys.executable, str(script), f"duckdb:///{db}", "40"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    reported = [line.split()[1:] for line in proc.stdout.splitlines()]
    root_id = reported[0][0]
    assert len(reported) == 41
    assert _records(Path(journal_path(str(db)))) > 0  # the file alone does not hold them
    rows = await _rows(f"duckdb:///{db}")
    assert len(rows) == 81
    assert rows[root_id].has_children and rows[root_id].root_id is None
    for child_id, grandchild_id in reported[1:]:
        child, grandchild = rows[child_id], rows[grandchild_id]
        assert (child.parent_id, child.root_id, child.has_children) == (root_id, root_id, True)
        assert (grandchild.parent_id, grandchild.root_id) == (child_id, root_id)
        assert not grandchild.has_children


async def test_create_task_refuses_a_taken_id_still_waiting_for_the_file(tmp_path: Path) -> None:
    from aipartnerupflow import TaskManager

    store = create_session(f"duckdb:///{tmp_path / 't.duckdb'}")
    repo = TaskManager(store).task_repository
    root = await repo.create_task("root", id="r")
    await repo.create_task("child", parent_id=root.id, id="c")
    with pytest.raises(TaskAlreadyExistsError, match="already exist in the store: c\\."):
        await repo.create_task("again", parent_id=root.id, id="c")  # "c" is in memory only
    with pytest.raises(TaskAlreadyExistsError):
        await repo.create_task("again", id="r")
    rows = await _all(store)  # the read applies the inserts; the refused ones left nothing
    assert sorted(rows) == ["c", "r"] and rows["c"].name == "child"
    with pytest.raises(TaskAlreadyExistsError):
        await repo.create_task("again", id="c")  # now looked up in the file
    await store.close()


async def test_create_task_sees_deletes_and_updates_made_without_the_journal(
    tmp_path: Path,
) -> None:
    from aipartnerupflow import TaskManager
    from aipartnerupflow.core.errors import TaskNotFoundError

    store = create_session(f"duckdb:///{tmp_path / 't.duckdb'}")
    repo = TaskManager(store).task_repository
    root = await repo.create_task("root", id="r")
    await repo.create_task("child", parent_id="r", id="c")
    assert await store.update_task("r", {"has_children": False})  # remembered fact is stale
    await repo.create_task("second", parent_id="r", id="d")
    got = await store.get_task("r")
    assert got is not None and got.has_children
    assert await store.delete_tasks(["c", "d", "r"]) == 3
    with pytest.raises(TaskNotFoundError, match="parent task 'r' does not exist"):
        await repo.create_task("orphan", parent_id=root.id)
    assert await _all(store) == {}
    await store.close()


async def test_the_returned_task_is_the_callers_own_object(tmp_path: Path) -> None:
    from aipartnerupflow import TaskManager

    store = create_session(f"duckdb:///{tmp_path / 't.duckdb'}")
    repo = TaskManager(store).task_repository
    task = await repo.create_task("t", inputs={"n": 1})
    task.name = "changed after the call"
    task.inputs["n"] = 2
    got = await store.get_task(task.id)
    assert got is not None and (got.name, got.inputs) == ("t", {"n": 1})
    await store.close()


# -- the event loop's direct writes: order with queued jobs, fallback, idle checkpoint ---------


async def test_gathered_changes_keep_their_order_with_queued_writes(tmp_path: Path) -> None:
    store = create_session(f"duckdb:///{tmp_path / 't.duckdb'}")
    await store.insert_tasks([TaskModel(name=n, id=n) for n in ("a", "b")])
    store.write_behind("a", {"status": "in_progress", "progress": 0.5})  # kept in memory
    assert await store.update_task("a", {"status": "completed"})  # queued after it: wins
    assert await store.update_task("b", {"status": "completed"})
    store.write_behind("b", {"status": "failed"})  # later than the update: wins
    await store.flush()
    rows = await _all(store)
    assert (rows["a"].status, rows["a"].progress) == ("completed", 0.5)
    assert rows["b"].status == "failed"
    await store.close()


async def test_write_ahead_waits_for_a_busy_database_thread(tmp_path: Path) -> None:
    import asyncio
    import time

    store = create_session(f"duckdb:///{tmp_path / 't.duckdb'}")
    await store.insert_tasks([TaskModel(name="a", id="a")])
    assert isinstance(store, SqlTaskStorage)
    busy = asyncio.ensure_future(store.run_sql(lambda conn: time.sleep(0.3)))
    await asyncio.sleep(0.05)  # the database thread is inside the call now
    ahead = store.write_ahead({"a": {"status": "in_progress", "attempts": 1}})
    assert not ahead.done()  # queued behind the call, not written by the loop meanwhile
    assert await ahead == {}
    assert busy.done()
    got = await store.get_task("a")
    assert got is not None and (got.status, got.attempts) == ("in_progress", 1)
    await store.close()


async def test_direct_writes_are_checkpointed_once_the_store_is_idle(tmp_path: Path) -> None:
    import asyncio

    from aipartnerupflow.core.storage import deferred

    db = tmp_path / "t.duckdb"
    store = create_session(f"duckdb:///{db}")
    await store.insert_tasks([TaskModel(name="a", id="a")])
    await store.flush()
    await asyncio.sleep(deferred.IDLE_CHECKPOINT_SECONDS * 3)
    assert _records(Path(journal_path(str(db)))) == 0
    for i in range(5):
        assert await store.write_ahead({"a": {"attempts": i + 1}}) == {}
    assert _records(Path(journal_path(str(db)))) >= 5  # durable by the journal alone
    await asyncio.sleep(deferred.IDLE_CHECKPOINT_SECONDS * 4)
    assert _records(Path(journal_path(str(db)))) == 0  # committed to the file meanwhile
    await store.close()
    again = create_session(f"duckdb:///{db}")
    got = await again.get_task("a")
    assert got is not None and got.attempts == 5
    await again.close()


async def test_a_large_insert_is_one_record_and_reaches_the_file_in_chunks(tmp_path: Path) -> None:
    from aipartnerupflow.core.storage import deferred

    db = tmp_path / "t.duckdb"
    url = f"duckdb:///{db}"
    n = deferred._APPLY_ROWS * 2 + 7  # three chunks
    out = _run_writer(tmp_path, url, n, "kill")
    assert out.startswith(f"{-signal.SIGKILL}|durable"), out[-2000:]
    rows = await _rows(url)  # replayed after kill -9
    assert len(rows) == n
    assert all(t.status == "completed" and t.attempts == 1 for t in rows.values())
    assert rows[f"t{n - 1}"].result == {"i": n - 1}
    store = create_session(url)
    more = [TaskModel(name=f"m{i}", id=f"m{i}") for i in range(n)]
    await store.insert_tasks(more)
    store.write_behind(f"m{n - 1}", {"status": "completed", "result": {"last": True}})
    with pytest.raises(TaskAlreadyExistsError, match="m0"):  # pending rows are taken ids
        await store.insert_tasks([TaskModel(name="again", id="m0")])
    got = await _all(store)  # applied chunk by chunk, the later change merged in
    assert len(got) == 2 * n and got[f"m{n - 1}"].result == {"last": True}
    await store.close()


async def test_timestamps_survive_the_journal_exactly_in_either_encoding(tmp_path: Path) -> None:
    from datetime import timedelta

    db = tmp_path / "t.duckdb"
    url = f"duckdb:///{db}"
    store = create_session(url)
    await store.insert_tasks([TaskModel(name=n, id=n) for n in ("new", "old")])
    await store.close()
    stamp = datetime(2026, 12, 7, 23, 59, 58, 123457, tzinfo=UTC)
    journal = Journal(journal_path(str(db)))
    journal.open()
    # microseconds since the epoch (this release), ISO text (the release before)
    micros = (stamp - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    journal.append(json.dumps({"u": {"new": {"started_at": micros}}}).encode())
    journal.append(json.dumps({"u": {"old": {"started_at": stamp.isoformat()}}}).encode())
    journal.close()
    rows = await _rows(url)  # replayed on open
    assert rows["new"].started_at == stamp and rows["old"].started_at == stamp
