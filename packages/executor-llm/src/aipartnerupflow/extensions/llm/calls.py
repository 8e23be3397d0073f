"""Provider calls through LiteLLM: one place for streaming, usage, cost, checkpoints and the
mapping of provider failures onto the engine's error kinds.

LiteLLM is imported on the first call, with ``LITELLM_LOCAL_MODEL_COST_MAP`` defaulting to
true so the import never fetches the cost map from the internet. LiteLLM's own retries are
off (``num_retries=0``, ``max_retries=0``): the engine owns retries.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from typing import Any

from aipartnerupflow.core.context import TaskContext
from aipartnerupflow.core.errors import PermanentError, RetryableError
from aipartnerupflow.core.executors.secrets import SecretScrubber
from aipartnerupflow.extensions.llm.checkpoints import CheckpointStore, request_hash

__all__ = ["Answer", "Caller", "import_litellm"]

_PROGRESS_INTERVAL = 0.25  # seconds between streaming progress events


def import_litellm() -> Any:
    """Import LiteLLM offline-safe (local cost map, no banners)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    return litellm


@dataclass(slots=True)
class Answer:
    """One completed call."""

    content: str | None
    tool_calls: list[dict[str, Any]]
    finish_reason: str | None
    model: str | None
    usage: dict[str, int]
    cost: float | None
    response: dict[str, Any]
    from_checkpoint: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "tool_calls": self.tool_calls,
            "finish_reason": self.finish_reason,
            "model": self.model,
            "usage": self.usage,
            "cost": self.cost,
            "response": self.response,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Answer:
        return cls(
            content=data.get("content"),
            tool_calls=list(data.get("tool_calls") or []),
            finish_reason=data.get("finish_reason"),
            model=data.get("model"),
            usage=dict(data.get("usage") or {}),
            cost=data.get("cost"),
            response=dict(data.get("response") or {}),
            from_checkpoint=True,
        )


def _usage(response: Any) -> dict[str, int]:
    usage = getattr(response, "usage", None)
    out: dict[str, int] = {}
    for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
        value = getattr(usage, name, None)
        if isinstance(value, int):
            out[name] = value
    return out


def _cost(litellm: Any, response: Any) -> float | None:
    try:
        value = litellm.completion_cost(completion_response=response)
    except Exception:  # unknown model or provider: LiteLLM cannot price it
        return None
    return float(value) if isinstance(value, int | float) and value > 0 else None


def _retry_after(exc: Any) -> float | None:
    """The provider's ``Retry-After`` (seconds), from wherever this LiteLLM version keeps it."""
    raw = None
    response = getattr(exc, "response", None)
    for headers in (
        getattr(exc, "litellm_response_headers", None),  # LiteLLM >= 1.108
        getattr(exc, "headers", None),
        getattr(response, "headers", None),
    ):
        if headers is not None and hasattr(headers, "get"):
            raw = headers.get("retry-after")
            if raw is not None:
                break
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def map_error(exc: Exception, model: str, scrubber: SecretScrubber) -> Exception:
    """The engine's error kind for a LiteLLM failure (message scrubbed, key never shown)."""
    text = scrubber.text(str(exc)).replace("litellm.", "").strip()
    status = getattr(exc, "status_code", None)
    name = type(exc).__name__
    where = f"the model {model!r}"
    if isinstance(status, int) and status == 429:
        after = _retry_after(exc)
        hint = f" (retry after {after:g}s)" if after is not None else ""
        return RetryableError(f"{where} is rate limited{hint}: {text}", retry_after=after)
    if name in ("Timeout", "APIConnectionError", "ServiceUnavailableError") or (
        isinstance(status, int) and (status >= 500 or status == 408)
    ):
        return RetryableError(f"{where} failed with a provider error that may pass: {text}")
    if name == "AuthenticationError" or status == 401:
        return PermanentError(
            f"{where} refused the API key: {text} (check api_key, api_key_env, "
            "AIPARTNERUPFLOW_LLM_API_KEY or the provider's own key variable)"
        )
    if name == "PermissionDeniedError" or status == 403:
        return PermanentError(f"{where} refused the request (permission denied): {text}")
    if name == "NotFoundError" or status == 404:
        return PermanentError(f"{where} was not found at the provider: {text}")
    if name in ("BadRequestError", "ContextWindowExceededError", "ContentPolicyViolationError") or (
        isinstance(status, int) and 400 <= status < 500
    ):
        return PermanentError(f"{where} refused the request as invalid: {text}")
    return PermanentError(f"calling {where} failed: {type(exc).__name__}: {text}")


@dataclass(slots=True)
class Caller:
    """Makes the calls of one task run, counting positions for the checkpoints."""

    ctx: TaskContext | None
    scrubber: SecretScrubber
    checkpoints: CheckpointStore | None
    position: int = 0
    paid_calls: int = 0
    reused_calls: int = 0
    usage: dict[str, int] = field(default_factory=dict)
    cost: float | None = None

    async def call(
        self,
        model: str,
        messages: list[dict[str, Any]],
        params: dict[str, Any],
        *,
        api_key: str | None,
        stream: bool,
        timeout: float,  # noqa: ASYNC109 - also LiteLLM's own per-request timeout
    ) -> Answer:
        """One call (or its checkpoint); raises PermanentError/RetryableError on failure."""
        position = self.position
        self.position += 1
        digest = request_hash(model, messages, params)
        store = self.checkpoints if self.ctx is not None else None
        if store is not None and self.ctx is not None:
            stored = await store.load(self.ctx.task_id, position, digest)
            if stored is not None:
                self.reused_calls += 1
                answer = Answer.from_dict(stored)
                self._add(answer)
                return answer
        answer = await self._provider(model, messages, params, api_key, stream, timeout)
        self.paid_calls += 1
        self._add(answer)
        if store is not None and self.ctx is not None:
            await store.save(
                self.ctx.task_id, position, digest, self.scrubber.data(answer.to_dict())
            )
        return answer

    def _add(self, answer: Answer) -> None:
        for k, v in answer.usage.items():
            self.usage[k] = self.usage.get(k, 0) + v
        if answer.cost is not None:
            self.cost = (self.cost or 0.0) + answer.cost

    async def _provider(
        self,
        model: str,
        messages: list[dict[str, Any]],
        params: dict[str, Any],
        api_key: str | None,
        stream: bool,
        timeout: float,  # noqa: ASYNC109 - also LiteLLM's own per-request timeout
    ) -> Answer:
        litellm = import_litellm()
        kwargs: dict[str, Any] = {
            **params,
            "model": model,
            "messages": messages,
            "timeout": timeout,
            "num_retries": 0,
            "max_retries": 0,
        }
        if api_key is not None:
            kwargs["api_key"] = api_key
        try:
            async with asyncio.timeout(timeout):
                if stream:
                    kwargs["stream"] = True
                    kwargs["stream_options"] = {"include_usage": True}
                    stream_response = await litellm.acompletion(**kwargs)
                    response = await self._consume(
                        litellm, stream_response, params.get("max_tokens")
                    )
                else:
                    response = await litellm.acompletion(**kwargs)
        except TimeoutError:
            raise RetryableError(
                f"the model {model!r} did not answer within {timeout:g}s (raise input 'timeout' "
                "if it is slow)"
            ) from None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise map_error(exc, model, self.scrubber) from None
        return self._answer(litellm, response)

    async def _consume(self, litellm: Any, stream: Any, max_tokens: Any) -> Any:
        """Read the whole stream, publishing the tokens so far (as a fraction of
        ``max_tokens`` when known)."""
        chunks: list[Any] = []
        pieces = 0
        last = 0.0
        async for chunk in stream:
            chunks.append(chunk)
            choices = getattr(chunk, "choices", None) or []
            delta = getattr(choices[0], "delta", None) if choices else None
            if delta is not None and (getattr(delta, "content", None) or delta.tool_calls):
                pieces += 1
                now = time.monotonic()
                if self.ctx is not None and (pieces == 1 or now - last >= _PROGRESS_INTERVAL):
                    last = now
                    share = pieces / max_tokens if isinstance(max_tokens, int) else 0.0
                    self.ctx.report_progress(min(0.99, share), f"streaming: {pieces} tokens so far")
        if self.ctx is not None:
            self.ctx.report_progress(0.0, f"streamed: {pieces} tokens")
        if not chunks:
            raise RetryableError("the provider closed the stream without sending an answer")
        return litellm.stream_chunk_builder(chunks)

    def _answer(self, litellm: Any, response: Any) -> Answer:
        choices = getattr(response, "choices", None) or []
        if not choices:
            raise PermanentError("the provider answered without any choice")
        choice = choices[0]
        message = getattr(choice, "message", None)
        content = getattr(message, "content", None)
        calls = []
        for call in getattr(message, "tool_calls", None) or []:
            function = getattr(call, "function", None)
            calls.append(
                {
                    "id": getattr(call, "id", None),
                    "name": getattr(function, "name", None),
                    "arguments": getattr(function, "arguments", None),
                }
            )
        try:
            dump = response.model_dump(mode="json", exclude_none=True)
        except Exception:
            dump = {}
        return Answer(
            content=content if isinstance(content, str) else None,
            tool_calls=calls,
            finish_reason=getattr(choice, "finish_reason", None),
            model=getattr(response, "model", None),
            usage=_usage(response),
            cost=_cost(litellm, response),
            response=self.scrubber.data(dump),
        )
