"""Test kit: a real OpenSSH ``sshd`` on a free loopback port, started (and stopped) by the
tests, and helpers to watch remote processes.

The server runs in the foreground (``-D``) with a temporary config, generated host and user
keys and an ``authorized_keys`` file. For password authentication it runs inside a private
mount namespace (``unshare -m``) where a temporary copy of ``/etc/shadow`` with a generated
root password is bind-mounted over the real one: nothing on the machine changes. There is no
skip: without ``/usr/sbin/sshd`` (``apt-get install openssh-server``) the fixture fails.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _keygen(path: Path, kind: str = "ed25519", passphrase: str = "") -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-f", str(path)],
        check=True,
        capture_output=True,
    )


def _fingerprint(pub: Path) -> str:
    out = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(pub)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.split()[1]


@dataclass
class Sshd:
    """A running sshd and what a client needs to reach it."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes]
    user: str
    uid: int
    home: Path
    password: str
    user_key: Path
    encrypted_key: Path
    passphrase: str
    host_public_key: str
    host_fingerprint: str

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def known_hosts_line(self) -> str:
        return f"[{self.host}]:{self.port} {self.host_public_key}"

    def log(self) -> str:
        path = self.directory / "sshd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


USER = "apflow-ssh-test"


def _free_uid() -> int:
    taken = {int(line.split(":")[2]) for line in Path("/etc/passwd").read_text().splitlines()}
    uid = 61000
    while uid in taken:
        uid += 1
    return uid


def _user_files(directory: Path, password: str, uid: int, home: Path) -> tuple[Path, Path]:
    """Copies of /etc/passwd and /etc/shadow with the test user added (for the namespace)."""
    hashed = subprocess.run(
        ["openssl", "passwd", "-6", "-stdin"],
        input=password,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    passwd = directory / "passwd"
    passwd.write_text(
        Path("/etc/passwd").read_text().rstrip("\n")
        + f"\n{USER}:x:{uid}:{uid}:aipartnerupflow ssh tests:{home}:/bin/sh\n"
    )
    passwd.chmod(0o644)
    shadow = directory / "shadow"
    shadow.write_text(
        Path("/etc/shadow").read_text().rstrip("\n") + f"\n{USER}:{hashed}:20000:0:99999:7:::\n"
    )
    shadow.chmod(0o640)
    return passwd, shadow


def start_sshd(directory: Path) -> Sshd:
    """Start sshd on a free loopback port; fails (never skips) when it cannot run."""
    if not os.path.exists(SSHD):
        pytest.fail(
            f"{SSHD} is missing: the ssh executor tests need a real OpenSSH server "
            "(apt-get install -y openssh-server; .ci/run does this)"
        )
    for tool in ("ssh-keygen", "openssl", "unshare", "mount"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: the sshd fixture needs it")
    directory.mkdir(parents=True, exist_ok=True)
    host_key = directory / "hostkey"
    user_key = directory / "userkey"
    encrypted_key = directory / "userkey_encrypted"
    passphrase = "pass-" + secrets.token_hex(8)
    _keygen(host_key)
    _keygen(user_key)
    _keygen(encrypted_key, passphrase=passphrase)
    authorized = directory / "authorized_keys"
    authorized.write_text(
        (directory / "userkey.pub").read_text() + (directory / "userkey_encrypted.pub").read_text()
    )
    authorized.chmod(0o600)
    password = "pw-" + secrets.token_hex(12)
    uid = _free_uid()
    home = directory / "home"
    home.mkdir()
    os.chown(home, uid, uid)
    directory.chmod(0o755)
    passwd, shadow = _user_files(directory, password, uid, home)
    os.chown(authorized, uid, uid)  # sshd reads it as the user
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = directory / "sshd_config"
    config.write_text(
        f"Port {port}\n"
        "ListenAddress 127.0.0.1\n"
        f"HostKey {host_key}\n"
        f"AuthorizedKeysFile {authorized}\n"
        "PasswordAuthentication yes\n"
        "KbdInteractiveAuthentication no\n"
        "PermitRootLogin no\n"
        f"AllowUsers {USER}\n"
        f"PidFile {directory / 'sshd.pid'}\n"
        "StrictModes no\n"
        "UsePAM no\n"
        "MaxSessions 10\n"
        "MaxStartups 100:30:200\n"
        "LogLevel VERBOSE\n"
    )
    # sshd delivers signals (cancellation) only for non-root users (root skips privsep), so
    # the tests log in as a user that exists only inside this mount namespace.
    script = (
        f"mount --bind {passwd} /etc/passwd && mount --bind {shadow} /etc/shadow "
        f"&& exec {SSHD} -D -e -f {config}"
    )
    with (directory / "sshd.log").open("wb") as log:
        process = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            pytest.fail(f"sshd exited with status {process.returncode}:\n{_read(directory)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as s:
            if s.recv(64).startswith(b"SSH-"):
                break
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"sshd did not answer on port {port}:\n{_read(directory)}")
        time.sleep(0.05)
    host_public = (directory / "hostkey.pub").read_text().split()
    return Sshd(
        port=port,
        directory=directory,
        process=process,
        user=USER,
        uid=uid,
        home=home,
        password=password,
        user_key=user_key,
        encrypted_key=encrypted_key,
        passphrase=passphrase,
        host_public_key=" ".join(host_public[:2]),
        host_fingerprint=_fingerprint(directory / "hostkey.pub"),
    )


def _read(directory: Path) -> str:
    path = directory / "sshd.log"
    return path.read_text(errors="replace") if path.exists() else ""


def read_text(path: Path) -> str:
    """The stripped content of ``path`` ('' when it does not exist)."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def process_gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie waiting to be reaped counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True
    return state in ("Z", "X")


async def wait_for_file(path: Path, guard: float = 60.0) -> str:
    """The content of ``path`` once it exists and is non-empty (``guard`` only stops a hang)."""
    import asyncio

    deadline = time.monotonic() + guard
    while time.monotonic() < deadline:
        text = read_text(path)
        if text:
            return text
        await asyncio.sleep(0.02)
    raise AssertionError(f"{path} was never written")


async def wait_gone(pid: int, guard: float = 60.0) -> bool:
    """True once ``pid`` has ended; False if it is still running after ``guard`` seconds."""
    import asyncio

    deadline = time.monotonic() + guard
    while time.monotonic() < deadline:
        if process_gone(pid):
            return True
        await asyncio.sleep(0.05)
    return False
