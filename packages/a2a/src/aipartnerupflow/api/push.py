"""Push notifications: which webhook URLs may be called, and ordered at-least-once delivery.

Where webhooks may point is the executor kit's :class:`OutboundPolicy` (non-public addresses
and cloud metadata endpoints denied unless allowed), applied twice: when a config is created
(:meth:`QueuedPushSender.validate_url`, the SDK's ``push_url_validator``) and on every delivery,
by the kit's :class:`PolicyTransport`, which checks the addresses it resolves and connects to a
checked one, so a name that answers a public address first and 127.0.0.1 later (DNS rebinding)
cannot reach loopback. Refused URLs are logged without user-info or credential-like query values.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
from a2a.server.tasks import PushNotificationConfigStore, PushNotificationEvent
from a2a.server.tasks.push_notification_sender import PushNotificationSender
from a2a.types import TaskPushNotificationConfig
from a2a.utils.proto_utils import to_stream_response
from google.protobuf.json_format import MessageToDict

from aipartnerupflow.core.errors import OutboundPolicyError
from aipartnerupflow.core.executors.http_transport import policy_client
from aipartnerupflow.core.executors.policy import OutboundPolicy
from aipartnerupflow.core.executors.secrets import redact_url

__all__ = ["PUSH_SETTING_PREFIX", "RESOLVE_SECONDS", "QueuedPushSender", "push_policy"]

log = logging.getLogger("aipartnerupflow.api.push")

#: How long a config's creation waits for its host name to resolve.
RESOLVE_SECONDS = 5.0

#: Prefix of the push settings named in refusals (``AIPARTNERUPFLOW_PUSH_ALLOW_PRIVATE`` …).
PUSH_SETTING_PREFIX = "AIPARTNERUPFLOW_PUSH_"


def push_policy(
    *, allow_private: bool = False, allowed_hosts: Iterable[str] = ()
) -> OutboundPolicy:
    """The outbound policy of push webhooks (``allowed_hosts``: names, addresses, networks)."""
    return OutboundPolicy(
        allowed_hosts=tuple(allowed_hosts),
        allow_private=allow_private,
        setting_prefix=PUSH_SETTING_PREFIX,
    )


@dataclass(slots=True)
class _Target:
    config: TaskPushNotificationConfig
    #: Bodies serialised when queued: each delivery is the state of its moment.
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    worker: asyncio.Task[None] | None = None


class QueuedPushSender(PushNotificationSender):
    """Delivers each task's events to each of its webhooks in order, retrying failures.

    The SDK calls :meth:`send_notification` inline while it processes a task's events; this
    sender only queues, so a slow or dead webhook never delays the task or its streams.
    Every event is POSTed as a ``StreamResponse`` JSON body with the config's token
    (``X-A2A-Notification-Token``) and authentication header, and retried with exponential
    backoff up to ``max_attempts`` times (at-least-once while the server runs). Requests go
    through a :class:`PolicyTransport` of ``policy`` unless a ``client`` is given (then only
    the URL is checked: give such a client only for tests).
    """

    def __init__(
        self,
        config_store: PushNotificationConfigStore,
        policy: OutboundPolicy,
        *,
        client: httpx.AsyncClient | None = None,
        max_attempts: int = 3,
        backoff_seconds: float = 0.5,
    ) -> None:
        self._store = config_store
        self._policy = policy
        self._client = client or policy_client(policy, timeout=10.0)
        self._own_client = client is None
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._targets: dict[tuple[str, str, str], _Target] = {}
        self.delivered = 0
        self.failed = 0

    async def validate_url(self, url: str) -> bool:
        """Whether a push config may name ``url`` (the SDK's ``push_url_validator``).

        Refuses what the policy refuses now: scheme, host, and every address the name resolves
        to. A name that does not resolve (within ``RESOLVE_SECONDS``) is accepted; each delivery
        checks again, on the addresses it connects to.
        """
        try:
            target = self._policy.check_url(url)
            async with asyncio.timeout(RESOLVE_SECONDS):
                await self._policy.resolve(target.host, target.port)
        except OutboundPolicyError as exc:
            log.info("push notification URL %s refused: %s", redact_url(url), exc)
            return False
        except (ConnectionError, TimeoutError):
            return True
        return True

    async def send_notification(self, task_id: str, event: PushNotificationEvent) -> None:
        try:
            configs = await self._store.get_info_for_dispatch(task_id)
        except Exception:
            log.exception("cannot read push configs of task %s", task_id)
            return
        if not configs:
            return
        # The SDK hands over live objects (the Task keeps changing as events apply): serialise
        # now, so a delivery sent later still shows the state this event produced.
        body = MessageToDict(to_stream_response(event))
        for config in configs:
            key = (task_id, config.id, config.url)
            target = self._targets.get(key)
            if target is None:
                target = self._targets[key] = _Target(config)
            target.queue.put_nowait(body)
            if target.worker is None or target.worker.done():
                target.worker = asyncio.create_task(
                    self._drain(key, target), name=f"push:{task_id}:{config.id}"
                )

    async def _drain(self, key: tuple[str, str, str], target: _Target) -> None:
        try:
            while not target.queue.empty():
                body = target.queue.get_nowait()
                await self._deliver(key[0], target.config, body)
        finally:
            if target.queue.empty() and self._targets.get(key) is target:
                del self._targets[key]

    async def _deliver(
        self, task_id: str, config: TaskPushNotificationConfig, body: dict[str, Any]
    ) -> None:
        try:
            self._policy.check_url(config.url)
        except OutboundPolicyError as exc:
            self._refused(task_id, config.url, exc)
            return
        headers = {}
        if config.token:
            headers["X-A2A-Notification-Token"] = config.token
        auth = config.authentication
        if config.HasField("authentication") and auth.scheme and auth.credentials:
            headers["Authorization"] = f"{auth.scheme} {auth.credentials}"
        delay = self._backoff
        for attempt in range(1, self._max_attempts + 1):
            try:
                response = await self._client.post(config.url, json=body, headers=headers)
                if response.status_code < 400:
                    self.delivered += 1
                    return
                retry = response.status_code >= 500 or response.status_code in {408, 429}
                reason = f"HTTP {response.status_code}"
            except OutboundPolicyError as exc:  # a resolved address the policy denies
                self._refused(task_id, config.url, exc)
                return
            except httpx.HTTPError as exc:
                retry, reason = True, type(exc).__name__
            if not retry or attempt == self._max_attempts:
                log.warning(
                    "push notification for task %s to %s failed after %d attempt(s): %s",
                    task_id,
                    redact_url(config.url),
                    attempt,
                    reason,
                )
                self.failed += 1
                return
            await asyncio.sleep(delay)
            delay *= 2

    def _refused(self, task_id: str, url: str, exc: OutboundPolicyError) -> None:
        log.warning(
            "push notification for task %s to %s refused: %s", task_id, redact_url(url), exc
        )
        self.failed += 1

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
