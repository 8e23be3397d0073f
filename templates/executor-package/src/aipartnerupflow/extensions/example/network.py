"""``example_fetch``: GET a URL through the outbound policy (the network skeleton).

What the kit gives a network executor, in ~80 lines:

* :class:`~aipartnerupflow.core.executors.OutboundPolicy` through
  :func:`~aipartnerupflow.core.executors.http_transport.policy_client`: loopback, private and
  metadata addresses denied unless the operator allows them; every connection pinned to the
  checked address;
* :func:`~aipartnerupflow.core.executors.read_secret_env`: a token from an environment variable
  the operator allow-listed, registered as a secret (masked in results, errors, events, logs);
* :class:`~aipartnerupflow.core.executors.OutputCap`: the body is capped, the result says so;
* :func:`~aipartnerupflow.core.executors.loop_resource`: one client per event loop, closed by
  ``TaskManager.close()``;
* :class:`~aipartnerupflow.core.errors.PermanentError` / ``RetryableError``: the engine owns
  retries (a 4xx runs once; a 503 is retried no earlier than its ``Retry-After``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from aipartnerupflow.core.errors import PermanentError, RetryableError
from aipartnerupflow.core.executor import ExecutableTask
from aipartnerupflow.core.executors import (
    OutputCap,
    effective_limit,
    loop_resource,
    read_secret_env,
)
from aipartnerupflow.extensions.example.settings import ExampleSettings

__all__ = ["ExampleFetchExecutor"]


class ExampleFetchExecutor(ExecutableTask):
    """GET ``inputs["url"]``; the result holds the status, headers and (capped) body."""

    id = "example_fetch"
    name = "Example fetch"
    description = "GETs a URL through the outbound policy: the network executor template."
    tags: ClassVar[list[str]] = ["example", "http"]
    examples: ClassVar[list[dict[str, Any]]] = [
        {"name": "fetch a page", "inputs": {"url": "https://example.com/"}},
    ]
    # Open to extra keys (no additionalProperties: false): the engine merges each
    # dependency's result into the inputs under the dependency's id.
    input_schema: ClassVar[dict[str, Any] | None] = {
        "type": "object",
        "properties": {
            "url": {"type": "string", "minLength": 1, "description": "http(s) URL to GET"},
            "token_env": {
                "type": "string",
                "description": "environment variable holding a bearer token (allow-listed by "
                "AIPARTNERUPFLOW_EXAMPLE_SECRET_ENV)",
            },
            "max_bytes": {"type": "integer", "minimum": 0, "description": "body cap (bytes)"},
            "timeout": {"type": "number", "exclusiveMinimum": 0, "default": 30},
        },
        "required": ["url"],
    }

    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        import httpx  # the SDK: imported here, never at module level

        from aipartnerupflow.core.executors.http_transport import policy_client

        settings = ExampleSettings.get()
        policy = settings.policy()
        target = policy.check_url(str(inputs["url"]))  # a clear refusal before any connection
        headers = {}
        if "token_env" in inputs:
            token = read_secret_env(
                inputs["token_env"],
                allowed=settings.readable_env(),
                setting="AIPARTNERUPFLOW_EXAMPLE_SECRET_ENV",
                field="token_env",
            )
            headers["Authorization"] = f"Bearer {token}"
        client = await loop_resource(
            ("example_fetch", policy), lambda: policy_client(policy), lambda c: c.aclose()
        )
        cap = OutputCap(effective_limit(inputs.get("max_bytes"), settings.max_output_bytes))
        try:
            async with client.stream(
                "GET", str(inputs["url"]), headers=headers, timeout=float(inputs.get("timeout", 30))
            ) as response:
                async for chunk in response.aiter_bytes():
                    cap.feed(chunk)
        except httpx.TransportError as exc:
            raise RetryableError(f"GET {target.host} failed: {exc}") from None
        status = response.status_code
        if status == 429 or status >= 500:
            after = response.headers.get("retry-after", "")
            raise RetryableError(
                f"{target.host} answered {status}",
                retry_after=float(after) if after.isdigit() else None,
            )
        if status >= 400:
            raise PermanentError(f"{target.host} answered {status}: {cap.text()[:200]}")
        return {
            "status": status,
            "content_type": response.headers.get("content-type"),
            "body": cap.text(),
            **{f"body_{k}": v for k, v in cap.report().items()},
        }
