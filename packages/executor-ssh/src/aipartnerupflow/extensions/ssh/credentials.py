"""Credentials of one ssh task: read, checked and registered as secrets (no asyncssh here).

Every password, key and passphrase is registered with the kit's scrubber before anything can
fail, so it never reaches a result, an error or a log record. Key files are read only from the
operator's key directories and only when no one but their owner can read them.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from aipartnerupflow.core.errors import ConfigurationError, InputValidationError
from aipartnerupflow.core.executors.secrets import add_secret, read_secret_env
from aipartnerupflow.extensions.ssh.inputs import SshRequest
from aipartnerupflow.extensions.ssh.settings import SshSettings

__all__ = ["Credentials", "read_credentials"]

MAX_KEY_BYTES = 64 * 1024
_SECRET_SETTING = "AIPARTNERUPFLOW_SSH_SECRET_ENV"


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the client offers; ``key_text`` is the private key as text."""

    password: str | None = field(default=None, repr=False)
    key_text: str | None = field(default=None, repr=False)
    key_source: str = ""
    passphrase: str | None = field(default=None, repr=False)
    agent: bool = False

    def digest(self) -> str:
        """A hash identifying these credentials (keys the connection pool; not reversible)."""
        h = hashlib.sha256()
        for part in (self.password, self.key_text, self.passphrase, str(self.agent)):
            h.update(b"\x00" if part is None else b"\x01" + part.encode("utf-8", "surrogatepass"))
        return h.hexdigest()


def _register_key(text: str) -> None:
    add_secret(text, text.strip())
    add_secret(*(line for line in text.splitlines() if len(line) >= 16 and "-----" not in line))


def _key_file(path_text: str, settings: SshSettings) -> str:
    if not settings.key_dirs:
        raise ConfigurationError(
            "input 'key_file' is refused: no key directory is configured (the operator may "
            "set AIPARTNERUPFLOW_SSH_KEY_DIRS); or give the key through 'private_key_env'"
        )
    path = Path(os.path.realpath(os.path.expanduser(path_text)))
    dirs = [Path(os.path.realpath(os.path.expanduser(d))) for d in settings.key_dirs]
    if not any(path.is_relative_to(d) for d in dirs):
        raise InputValidationError(
            f"input 'key_file': {path_text!r} is outside the key directories of "
            "AIPARTNERUPFLOW_SSH_KEY_DIRS"
        )
    try:
        info = path.stat()
    except OSError:
        raise InputValidationError(f"input 'key_file': {path_text!r} does not exist") from None
    if not stat.S_ISREG(info.st_mode):
        raise InputValidationError(f"input 'key_file': {path_text!r} is not a regular file")
    if info.st_mode & 0o077:
        raise InputValidationError(
            f"input 'key_file': {path_text!r} can be read by other users; "
            f"restrict it with chmod 600"
        )
    if info.st_size > MAX_KEY_BYTES:
        raise InputValidationError(f"input 'key_file': {path_text!r} is too large for a key")
    try:
        return path.read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError):
        raise InputValidationError(f"input 'key_file': {path_text!r} cannot be read") from None


def read_credentials(request: SshRequest, settings: SshSettings) -> Credentials:
    """The credentials ``request`` names, every secret registered with the running task."""
    add_secret(request.password, request.private_key, request.passphrase)
    if request.private_key:
        _register_key(request.private_key)
    allowed = settings.readable_env()

    def env(name: str | None, what: str) -> str | None:
        if name is None:
            return None
        return read_secret_env(name, allowed=allowed, setting=_SECRET_SETTING, field=what)

    password = request.password or env(request.password_env, "password_env")
    passphrase = request.passphrase or env(request.passphrase_env, "passphrase_env")
    key_text, source = None, ""
    if request.private_key is not None:
        key_text, source = request.private_key, "input 'private_key'"
    elif request.private_key_env is not None:
        key_text = env(request.private_key_env, "private_key_env")
        source = f"environment variable {request.private_key_env}"
    elif request.key_file is not None:
        key_text, source = _key_file(request.key_file, settings), f"key file {request.key_file}"
    if key_text is not None:
        _register_key(key_text)
    if request.agent and not settings.allow_agent:
        raise ConfigurationError(
            "input 'agent' is refused: using the engine's ssh-agent is off (the operator may "
            "set AIPARTNERUPFLOW_SSH_ALLOW_AGENT=true)"
        )
    return Credentials(password, key_text, source, passphrase, request.agent)
