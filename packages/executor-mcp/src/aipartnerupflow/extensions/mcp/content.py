"""MCP results as JSON: text, structured content, embedded resources, binary as capped base64.

Protocol objects keep the protocol's field names (``mimeType``, ``structuredContent``). All
content of one result shares one byte budget (text as UTF-8, binary decoded); what does not
fit is cut, and the item says ``"truncated": true`` with its full ``size``.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aipartnerupflow.core.executors.caps import OutputCap, cap_text

__all__ = ["Budget", "content_json", "contents_json", "listing_json", "structured_json"]


class Budget:
    """Bytes of content still allowed in one result."""

    __slots__ = ("left", "limit", "truncated")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit
        self.truncated = False

    def text(self, value: str) -> dict[str, Any]:
        """``{"text": kept}`` plus truncation fields when cut."""
        kept, dropped = cap_text(value, self.left)
        self.left -= len(kept.encode("utf-8", errors="surrogatepass"))
        if not dropped:
            return {"text": kept}
        self.truncated = True
        return {"text": kept, "truncated": True, "size": len(kept.encode()) + dropped}

    def blob(self, data: str, field: str) -> dict[str, Any]:
        """``{field: base64 of the kept bytes}`` plus truncation fields when cut."""
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raw = data.encode("utf-8", errors="replace")  # not base64: keep it as bytes
        cap = OutputCap(self.left)
        cap.feed(raw)
        self.left -= len(cap.data)
        out: dict[str, Any] = {field: base64.b64encode(cap.data).decode("ascii")}
        if cap.truncated:
            self.truncated = True
            out.update(truncated=True, size=cap.total)
        return out


def _dump(model: Any) -> dict[str, Any]:
    data: dict[str, Any] = model.model_dump(by_alias=True, mode="json", exclude_none=True)
    return data


def _resource_json(resource: Any, budget: Budget) -> dict[str, Any]:
    data = _dump(resource)
    if isinstance(data.get("text"), str):
        data.update(budget.text(data["text"]))
    elif isinstance(data.get("blob"), str):
        data.update(budget.blob(data["blob"], "blob"))
    return data


def content_json(item: Any, budget: Budget) -> dict[str, Any]:
    """One content block (text, image, audio, resource, resource_link) as JSON."""
    data = _dump(item)
    kind = data.get("type")
    if kind == "text" and isinstance(data.get("text"), str):
        data.update(budget.text(data["text"]))
    elif kind in ("image", "audio") and isinstance(data.get("data"), str):
        data.update(budget.blob(data["data"], "data"))
    elif kind == "resource" and getattr(item, "resource", None) is not None:
        data["resource"] = _resource_json(item.resource, budget)
    return data


def contents_json(items: Any, budget: Budget) -> list[dict[str, Any]]:
    """Resource contents (``resources/read``) as JSON."""
    return [_resource_json(item, budget) for item in items]


def listing_json(items: Any, budget: Budget) -> list[dict[str, Any]]:
    """Listed tools, resources or prompts as JSON, as many as the budget holds."""
    out: list[dict[str, Any]] = []
    for item in items:
        data = _dump(item)
        size = len(json.dumps(data, ensure_ascii=False).encode())
        if size > budget.left:
            budget.truncated = True
            break
        budget.left -= size
        out.append(data)
    return out


def structured_json(value: Any, budget: Budget) -> dict[str, Any]:
    """``{"structuredContent": value}`` when it fits the budget, else a note of its size
    (structured data cannot be cut and stay meaningful)."""
    size = len(json.dumps(value, ensure_ascii=False, default=str).encode())
    if size > budget.left:
        budget.truncated = True
        return {"structuredContentTruncated": True, "structuredContentSize": size}
    budget.left -= size
    return {"structuredContent": value}
