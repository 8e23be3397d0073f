"""Logging in to the real sshd: key (inline, env, file), encrypted key, password, agent."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ssh_testkit import Sshd

from aipartnerupflow.core.errors import ConfigurationError, InputValidationError, PermanentError
from aipartnerupflow.core.settings import reload_settings
from aipartnerupflow.extensions.ssh import SshAuthError, SshExecutor


async def run(inputs: dict[str, Any]) -> dict[str, Any]:
    return await SshExecutor().execute({"command": ["id", "-un"], **inputs})


def base(sshd: Sshd) -> dict[str, Any]:
    return {"host": sshd.host, "port": sshd.port, "username": sshd.user}


async def test_inline_key(key_inputs: dict[str, Any], sshd: Sshd) -> None:
    assert (await run(key_inputs))["stdout"] == f"{sshd.user}\n"


async def test_password(password_inputs: dict[str, Any], sshd: Sshd) -> None:
    assert (await run(password_inputs))["stdout"] == f"{sshd.user}\n"


async def test_wrong_password_is_a_permanent_auth_error_without_the_password(
    sshd: Sshd, known_hosts: Path
) -> None:
    wrong = "wrong-" + sshd.password
    with pytest.raises(SshAuthError) as info:
        await run({**base(sshd), "password": wrong})
    assert isinstance(info.value, PermanentError)
    assert "refused the credentials" in str(info.value)
    assert sshd.user in str(info.value)
    assert wrong not in str(info.value)


async def test_unknown_user_is_refused(sshd: Sshd, known_hosts: Path) -> None:
    with pytest.raises(SshAuthError):
        await run({**base(sshd), "username": "nobody-here", "password": sshd.password})


async def test_password_from_an_allowed_environment_variable(
    sshd: Sshd, known_hosts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SSH_PW", sshd.password)
    with pytest.raises(InputValidationError, match="AIPARTNERUPFLOW_SSH_SECRET_ENV"):
        await run({**base(sshd), "password_env": "TEST_SSH_PW"})
    monkeypatch.setenv("AIPARTNERUPFLOW_SSH_SECRET_ENV", "TEST_SSH_PW")
    reload_settings()
    assert (await run({**base(sshd), "password_env": "TEST_SSH_PW"}))["exit_code"] == 0


async def test_private_key_from_the_core_secret_env(
    sshd: Sshd, known_hosts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SSH_KEY", sshd.user_key.read_text())
    monkeypatch.setenv("AIPARTNERUPFLOW_SECRET_ENV", "TEST_SSH_KEY")
    reload_settings()
    assert (await run({**base(sshd), "private_key_env": "TEST_SSH_KEY"}))["exit_code"] == 0


async def test_encrypted_key_needs_its_passphrase(sshd: Sshd, known_hosts: Path) -> None:
    key = sshd.encrypted_key.read_text()
    ok = await run({**base(sshd), "private_key": key, "passphrase": sshd.passphrase})
    assert ok["exit_code"] == 0
    with pytest.raises(SshAuthError, match="passphrase"):
        await run({**base(sshd), "private_key": key})
    with pytest.raises(SshAuthError, match="passphrase is wrong") as info:
        await run({**base(sshd), "private_key": key, "passphrase": "not-" + sshd.passphrase})
    assert sshd.passphrase not in str(info.value)


async def test_garbage_key_is_a_clear_error(sshd: Sshd, known_hosts: Path) -> None:
    with pytest.raises(SshAuthError, match="could not be read") as info:
        await run({**base(sshd), "private_key": "not a key at all, secretive"})
    assert "secretive" not in str(info.value)


async def test_a_key_the_server_does_not_know_is_refused(
    sshd: Sshd, known_hosts: Path, tmp_path: Path
) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True
    )
    with pytest.raises(SshAuthError, match="private key"):
        await run({**base(sshd), "private_key": (tmp_path / "other").read_text()})


@pytest.fixture
def key_dir(tmp_path: Path, sshd: Sshd, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "keys"
    directory.mkdir()
    shutil.copy(sshd.user_key, directory / "id_test")
    (directory / "id_test").chmod(0o600)
    monkeypatch.setenv("AIPARTNERUPFLOW_SSH_KEY_DIRS", str(directory))
    reload_settings()
    return directory


async def test_key_file_inside_the_key_dirs(key_dir: Path, sshd: Sshd, known_hosts: Path) -> None:
    assert (await run({**base(sshd), "key_file": str(key_dir / "id_test")}))["exit_code"] == 0


async def test_key_file_outside_the_key_dirs_is_refused(
    key_dir: Path, sshd: Sshd, known_hosts: Path
) -> None:
    with pytest.raises(InputValidationError, match="outside the key directories"):
        await run({**base(sshd), "key_file": str(sshd.user_key)})
    with pytest.raises(InputValidationError, match="outside"):
        await run({**base(sshd), "key_file": str(key_dir / ".." / ".." / "etc" / "shadow")})
    (key_dir / "link").symlink_to(sshd.user_key)
    with pytest.raises(InputValidationError, match="outside"):
        await run({**base(sshd), "key_file": str(key_dir / "link")})


async def test_key_file_readable_by_others_is_refused(
    key_dir: Path, sshd: Sshd, known_hosts: Path
) -> None:
    (key_dir / "id_test").chmod(0o644)
    with pytest.raises(InputValidationError, match="chmod 600"):
        await run({**base(sshd), "key_file": str(key_dir / "id_test")})


async def test_key_file_without_key_dirs_is_refused(sshd: Sshd, known_hosts: Path) -> None:
    with pytest.raises(ConfigurationError, match="AIPARTNERUPFLOW_SSH_KEY_DIRS"):
        await run({**base(sshd), "key_file": str(sshd.user_key)})


async def test_no_credentials_at_all(sshd: Sshd) -> None:
    with pytest.raises(InputValidationError, match="no credentials"):
        await run(base(sshd))


async def test_two_keys_are_refused(sshd: Sshd) -> None:
    with pytest.raises(InputValidationError, match="one private key"):
        await run({**base(sshd), "private_key": "x", "private_key_env": "Y"})


@pytest.fixture
def agent(sshd: Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real ssh-agent holding the user's key."""
    if shutil.which("ssh-agent") is None:
        pytest.fail("ssh-agent is missing (apt-get install openssh-client)")
    sock = str(tmp_path / "agent.sock")
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if os.path.exists(sock):
                break
            subprocess.run(["sleep", "0.02"], check=True)
        subprocess.run(
            ["ssh-add", str(sshd.user_key)],
            env={**os.environ, "SSH_AUTH_SOCK": sock},
            check=True,
            capture_output=True,
        )
        monkeypatch.setenv("SSH_AUTH_SOCK", sock)
        yield sock
    finally:
        proc.terminate()
        proc.wait()


async def test_agent_needs_the_operator_setting(
    agent: str, sshd: Sshd, known_hosts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigurationError, match="AIPARTNERUPFLOW_SSH_ALLOW_AGENT"):
        await run({**base(sshd), "agent": True})
    monkeypatch.setenv("AIPARTNERUPFLOW_SSH_ALLOW_AGENT", "true")
    reload_settings()
    assert (await run({**base(sshd), "agent": True}))["exit_code"] == 0


async def test_the_agent_is_not_used_unless_asked(
    agent: str, sshd: Sshd, known_hosts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIPARTNERUPFLOW_SSH_ALLOW_AGENT", "true")
    reload_settings()
    with pytest.raises(SshAuthError):
        await run({**base(sshd), "password": "wrong-password"})
