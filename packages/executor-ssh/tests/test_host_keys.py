"""Host-key checking against the real sshd: strict, pinned, mismatch, accept-new."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from ssh_testkit import Sshd

from aipartnerupflow.core.errors import ConfigurationError, PermanentError
from aipartnerupflow.core.settings import reload_settings
from aipartnerupflow.extensions.ssh import SshExecutor, SshHostKeyError


async def run(inputs: dict[str, Any]) -> dict[str, Any]:
    return await SshExecutor().execute({"command": ["true"], **inputs})


@pytest.fixture
def login(sshd: Sshd) -> dict[str, Any]:
    return {
        "host": sshd.host,
        "port": sshd.port,
        "username": sshd.user,
        "private_key": sshd.user_key.read_text(),
    }


@pytest.fixture
def other_key(tmp_path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True
    )
    return " ".join((tmp_path / "other.pub").read_text().split()[:2])


async def test_strict_with_the_host_in_known_hosts(
    login: dict[str, Any], known_hosts: Path
) -> None:
    assert (await run(login))["exit_code"] == 0


async def test_strict_without_a_known_hosts_file(login: dict[str, Any], tmp_path: Path) -> None:
    assert not (tmp_path / "known_hosts").exists()
    with pytest.raises(SshHostKeyError, match="does not exist") as info:
        await run(login)
    assert "ssh-keyscan" in str(info.value)
    assert isinstance(info.value, PermanentError)


async def test_strict_with_the_host_missing_from_known_hosts(
    login: dict[str, Any], tmp_path: Path, other_key: str
) -> None:
    (tmp_path / "known_hosts").write_text(f"other.example.com {other_key}\n")
    with pytest.raises(SshHostKeyError, match="unknown"):
        await run(login)


async def test_a_changed_host_key_is_refused(
    login: dict[str, Any], tmp_path: Path, sshd: Sshd, other_key: str
) -> None:
    (tmp_path / "known_hosts").write_text(f"[{sshd.host}]:{sshd.port} {other_key}\n")
    with pytest.raises(SshHostKeyError, match="HOST KEY MISMATCH") as info:
        await run(login)
    assert sshd.host_fingerprint in str(info.value)  # what the server presented


async def test_an_entry_without_port_covers_other_ports(
    login: dict[str, Any], tmp_path: Path, sshd: Sshd, other_key: str
) -> None:
    # asyncssh's rule: with no [host]:port entry, the host's plain entries apply (the same
    # machine usually has one host key whatever the port). A wrong plain entry still refuses.
    (tmp_path / "known_hosts").write_text(f"{sshd.host} {sshd.host_public_key}\n")
    assert (await run(login))["exit_code"] == 0
    (tmp_path / "known_hosts").write_text(f"{sshd.host} {other_key}\n")
    with pytest.raises(SshHostKeyError, match="HOST KEY MISMATCH"):
        await run(login)


async def test_pinned_fingerprint(login: dict[str, Any], sshd: Sshd) -> None:
    # No known_hosts file at all: the pin alone decides.
    assert (await run({**login, "host_key_fingerprint": sshd.host_fingerprint}))["exit_code"] == 0


async def test_pinned_fingerprint_mismatch(
    login: dict[str, Any], sshd: Sshd, known_hosts: Path
) -> None:
    wrong = "SHA256:" + "A" * 43
    with pytest.raises(SshHostKeyError, match="HOST KEY MISMATCH") as info:
        await run({**login, "host_key_fingerprint": wrong})
    assert wrong in str(info.value)
    assert sshd.host_fingerprint in str(info.value)


async def test_accept_new_is_off_by_default(login: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="AIPARTNERUPFLOW_SSH_ALLOW_ACCEPT_NEW"):
        await run({**login, "host_key_policy": "accept_new"})


async def test_accept_new_trusts_on_first_use_then_is_strict(
    login: dict[str, Any], tmp_path: Path, sshd: Sshd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIPARTNERUPFLOW_SSH_ALLOW_ACCEPT_NEW", "true")
    reload_settings()
    path = tmp_path / "known_hosts"
    assert not path.exists()
    assert (await run({**login, "host_key_policy": "accept_new"}))["exit_code"] == 0
    assert path.read_text() == f"[{sshd.host}]:{sshd.port} {sshd.host_public_key}\n"
    # now a strict check passes from the recorded entry (a new connection: another user key)
    fresh = {**login, "password": sshd.password}
    del fresh["private_key"]
    assert (await run(fresh))["exit_code"] == 0


async def test_accept_new_never_accepts_a_changed_key(
    login: dict[str, Any],
    tmp_path: Path,
    sshd: Sshd,
    other_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIPARTNERUPFLOW_SSH_ALLOW_ACCEPT_NEW", "true")
    reload_settings()
    path = tmp_path / "known_hosts"
    path.write_text(f"[{sshd.host}]:{sshd.port} {other_key}\n")
    with pytest.raises(SshHostKeyError, match="HOST KEY MISMATCH"):
        await run({**login, "host_key_policy": "accept_new"})
    assert path.read_text() == f"[{sshd.host}]:{sshd.port} {other_key}\n"
