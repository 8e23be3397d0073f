"""Push notifications: which webhook URLs are allowed, and ordered at-least-once delivery."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
from a2a.server.tasks import PushNotificationConfigStore, PushNotificationEvent
from a2a.server.tasks.push_notification_sender import PushNotificationSender
from a2a.types import TaskPushNotificationConfig
from a2a.utils.proto_utils import to_stream_response
from a2a.utils.push_url_validator import validate_push_notification_url
from google.protobuf.json_format import MessageToDict

__all__ = ["PushUrlPolicy", "QueuedPushSender"]

log = logging.getLogger("aipartnerupflow.api.push")


class PushUrlPolicy:
    """Decides whether a webhook URL may be called (an SSRF guard).

    Hosts in ``allowed_hosts`` (names, addresses or CIDR networks) are always allowed. Other
    hosts must resolve to public addresses only, unless ``allow_private`` is set. Only http and
    https URLs are accepted.
    """

    def __init__(self, *, allow_private: bool = False, allowed_hosts: Sequence[str] = ()) -> None:
        self.allow_private = allow_private
        self.names = {h.lower() for h in allowed_hosts if not _network(h)}
        self.networks = [n for n in (_network(h) for h in allowed_hosts) if n is not None]

    async def __call__(self, url: str) -> bool:
        try:
            parsed = urllib.parse.urlparse(url)
            port = parsed.port or (443 if parsed.scheme == "https" else 80)
        except ValueError:
            return False
        host = (parsed.hostname or "").lower()
        if parsed.scheme not in {"http", "https"} or not host:
            return False
        if host in self.names:
            return True
        if self.networks and await self._in_networks(host, port):
            return True
        if self.allow_private:
            return True
        return await validate_push_notification_url(url)

    async def _in_networks(self, host: str, port: int) -> bool:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError:
            return False
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
        return bool(addresses) and all(any(a in n for n in self.networks) for a in addresses)


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


@dataclass(slots=True)
class _Target:
    config: TaskPushNotificationConfig
    queue: asyncio.Queue[PushNotificationEvent] = field(default_factory=asyncio.Queue)
    worker: asyncio.Task[None] | None = None


class QueuedPushSender(PushNotificationSender):
    """Delivers each task's events to each of its webhooks in order, retrying failures.

    The SDK calls :meth:`send_notification` inline while it processes a task's events; this
    sender only queues, so a slow or dead webhook never delays the task or its streams.
    Every event is POSTed as a ``StreamResponse`` JSON body with the config's token
    (``X-A2A-Notification-Token``) and authentication header, and retried with exponential
    backoff up to ``max_attempts`` times (at-least-once while the server runs).
    """

    def __init__(
        self,
        config_store: PushNotificationConfigStore,
        policy: PushUrlPolicy,
        *,
        client: httpx.AsyncClient | None = None,
        max_attempts: int = 3,
        backoff_seconds: float = 0.5,
    ) -> None:
        self._store = config_store
        self._policy = policy
        self._client = client or httpx.AsyncClient(timeout=10.0, follow_redirects=False)
        self._own_client = client is None
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._targets: dict[tuple[str, str, str], _Target] = {}
        self.delivered = 0
        self.failed = 0

    async def send_notification(self, task_id: str, event: PushNotificationEvent) -> None:
        try:
            configs = await self._store.get_info_for_dispatch(task_id)
        except Exception:
            log.exception("cannot read push configs of task %s", task_id)
            return
        for config in configs:
            key = (task_id, config.id, config.url)
            target = self._targets.get(key)
            if target is None:
                target = self._targets[key] = _Target(config)
            target.queue.put_nowait(event)
            if target.worker is None or target.worker.done():
                target.worker = asyncio.create_task(
                    self._drain(key, target), name=f"push:{task_id}:{config.id}"
                )

    async def _drain(self, key: tuple[str, str, str], target: _Target) -> None:
        try:
            while not target.queue.empty():
                event = target.queue.get_nowait()
                await self._deliver(key[0], target.config, event)
        finally:
            if target.queue.empty() and self._targets.get(key) is target:
                del self._targets[key]

    async def _deliver(
        self, task_id: str, config: TaskPushNotificationConfig, event: PushNotificationEvent
    ) -> None:
        if not await self._policy(config.url):
            log.warning(
                "push notification for task %s refused: %s is not an allowed target",
                task_id,
                _safe_url(config.url),
            )
            self.failed += 1
            return
        headers = {}
        if config.token:
            headers["X-A2A-Notification-Token"] = config.token
        auth = config.authentication
        if config.HasField("authentication") and auth.scheme and auth.credentials:
            headers["Authorization"] = f"{auth.scheme} {auth.credentials}"
        body = MessageToDict(to_stream_response(event))
        delay = self._backoff
        for attempt in range(1, self._max_attempts + 1):
            try:
                response = await self._client.post(config.url, json=body, headers=headers)
                if response.status_code < 400:
                    self.delivered += 1
                    return
                retry = response.status_code >= 500 or response.status_code in {408, 429}
                reason = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                retry, reason = True, type(exc).__name__
            if not retry or attempt == self._max_attempts:
                log.warning(
                    "push notification for task %s to %s failed after %d attempt(s): %s",
                    task_id,
                    _safe_url(config.url),
                    attempt,
                    reason,
                )
                self.failed += 1
                return
            await asyncio.sleep(delay)
            delay *= 2

    async def aclose(self, grace_seconds: float = 5.0) -> None:
        """Wait (bounded) for queued deliveries, then release the HTTP client."""
        workers = [t.worker for t in self._targets.values() if t.worker is not None]
        if workers:
            _, pending = await asyncio.wait(workers, timeout=grace_seconds)
            for worker in pending:
                worker.cancel()
            for worker in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
        if self._own_client:
            await self._client.aclose()


def _safe_url(url: str) -> str:
    """The URL without user info or query (which may carry secrets), for logs."""
    try:
        parsed = urllib.parse.urlparse(url)
    except ValueError:
        return "<unparseable URL>"
    host = parsed.hostname or ""
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{host}{port}{parsed.path}"
