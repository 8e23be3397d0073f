"""Database URLs and driver errors never show a password or a stored value; a damaged or newer
database file is named with what is wrong (issue 26)."""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import pytest

from aipartnerupflow.core.errors import ConfigurationError, StorageError
from aipartnerupflow.core.models import TaskModel
from aipartnerupflow.core.storage import create_session, db_error_text, redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://u@h/db?password=hunter2&sslmode=require", "postgresql://u@h/db?password=***&sslmode=require"),
        ("postgresql://h/db?sslmode=require&sslpassword=k3y", "postgresql://h/db?sslmode=require&sslpassword=***"),
        ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),
        ("host=h user=u password=abc dbname=d", "host=h user=u password=*** dbname=d"),
        ("duckdb:///tmp/x.duckdb", "duckdb:///tmp/x.duckdb"),
    ],
)  # fmt: skip
def test_redact_url_hides_user_info_and_password_parameters(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_a_refused_url_hides_its_password_parameter() -> None:
    with pytest.raises(ConfigurationError) as info:
        create_session("mysql://h/db?password=hunter2")
    assert "hunter2" not in str(info.value)
    assert "password=***" in str(info.value)


def test_db_error_text_keeps_the_problem_and_masks_values() -> None:
    class Driver(Exception):
        pass

    class Wrapped(Exception):
        orig = Driver(
            'invalid input syntax for type double precision: "secret-1"\n'
            "DETAIL:  Key (id)=(secret-2) already exists.\n[SQL: UPDATE t SET x=%(x)s]\n"
            "[parameters: {'x': 'secret-3'}]"
        )

    text = db_error_text(Wrapped())
    assert text == 'invalid input syntax for type double precision: "***"'
    duck = db_error_text(
        Exception("Conversion Error: Could not convert string 'secret-4' to DOUBLE")
    )
    assert duck == "Conversion Error: Could not convert string '***' to DOUBLE"


async def test_a_failed_batch_logs_no_value(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="aipartnerupflow.storage")
    store = create_session("duckdb:///:memory:")
    try:
        await store.initialize()
        good, bad = TaskModel(name="good"), TaskModel(name="bad")
        await store.insert_tasks([good, bad])
        store.write_behind(bad.id, {"progress": "secret-progress-value"})
        store.write_behind(good.id, {"result": {"token": "secret-result-value"}})
        await store.flush()
        stored = await store.get_task(bad.id)
        kept = await store.get_task(good.id)
    finally:
        await store.close()
    assert "a batch of 2 task changes failed" in caplog.text  # the failure is still reported
    assert "secret-progress-value" not in caplog.text
    assert "secret-result-value" not in caplog.text
    assert stored is not None and stored.status == "failed"
    assert stored.error is not None and "secret-progress-value" not in stored.error
    assert kept is not None and kept.result == {"token": "secret-result-value"}


async def _open(path: Path) -> None:
    store = create_session(f"duckdb:///{path}")
    try:
        await store.initialize()
        await store.get_task("x")
    finally:
        await store.close()


async def test_a_truncated_duckdb_file_is_named_with_the_problem(tmp_path: Path) -> None:
    good = tmp_path / "good.duckdb"
    await _open(good)
    truncated = tmp_path / "truncated.duckdb"
    truncated.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(StorageError) as info:
        await _open(truncated)
    message = str(info.value)
    assert str(truncated) in message
    assert "truncated or damaged" in message
    assert "backup" in message


async def test_a_database_from_a_newer_release_is_named_with_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "newer.duckdb"
    await _open(path)
    with duckdb.connect(str(path)) as conn:
        conn.execute("UPDATE apflow_tasks_alembic_version SET version_num = '0099_future'")
    with pytest.raises(StorageError) as info:
        await _open(path)
    message = str(info.value)
    assert str(path) in message
    assert "'0099_future'" in message
    assert "newer aipartnerupflow" in message
    assert "Upgrade aipartnerupflow" in message
