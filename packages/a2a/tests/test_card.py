"""The agent card: interfaces, capabilities, security and skills."""

from __future__ import annotations

import json
from typing import Any

import pytest
from a2a_helpers import in_process


async def test_card_lists_interfaces_capabilities_and_executor_skills() -> None:
    async with in_process() as server:
        response = await server.http.get("/.well-known/agent-card.json")
        assert response.status_code == 200
        card = response.json()
    bindings = {i["protocolBinding"]: i for i in card["supportedInterfaces"]}
    assert set(bindings) == {"JSONRPC", "HTTP+JSON"}
    assert all(i["protocolVersion"] == "1.0" for i in bindings.values())
    assert card["capabilities"]["streaming"] is True
    assert card["capabilities"]["pushNotifications"] is True
    skills = {s["id"]: s for s in card["skills"]}
    assert "run_task_tree" in skills
    echo = skills["a2a_test_echo"]
    assert echo["description"] == "Returns its inputs."
    assert '"input_schema"' in echo["examples"][0]
    assert "securitySchemes" not in card


async def test_card_declares_bearer_auth_and_stays_public() -> None:
    async with in_process(jwt_secret_key="k" * 40) as server:
        response = await server.http.get("/.well-known/agent-card.json")
        assert response.status_code == 200
        card = response.json()
        legacy = await server.http.get("/.well-known/agent.json")
        assert legacy.status_code == 200
    scheme = card["securitySchemes"]["bearer"]["httpAuthSecurityScheme"]
    assert scheme["scheme"] == "Bearer"
    assert card["securityRequirements"] == [{"schemes": {"bearer": {}}}]


async def test_card_picks_up_executors_registered_later() -> None:
    from aipartnerupflow import BaseTask, executor_register
    from aipartnerupflow.core.registry import get_executor_registry

    async with in_process() as server:

        @executor_register()
        class Late(BaseTask):
            id = "a2a_test_late"

            async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
                return {}

        try:
            card = (await server.http.get("/.well-known/agent-card.json")).json()
        finally:
            get_executor_registry().unregister("a2a_test_late")
    assert "a2a_test_late" in {s["id"] for s in card["skills"]}


async def test_health_is_public() -> None:
    async with in_process(jwt_secret_key="k" * 40) as server:
        response = await server.http.get("/system/health")
    assert response.status_code == 200
    assert response.json()["status"] == "healthy"


async def test_card_reads_metadata_from_the_class(monkeypatch: pytest.MonkeyPatch) -> None:
    """An executor that needs params keeps its schemas; a dangerous one says if it is enabled."""
    from aipartnerupflow import BaseTask, executor_register
    from aipartnerupflow.core.registry import get_executor_registry
    from aipartnerupflow.core.settings import reload_settings

    @executor_register()
    class Guarded(BaseTask):
        id = "a2a_test_guarded"
        description = "Needs a token."
        dangerous = True
        input_schema = {"type": "object", "properties": {"cmd": {"type": "string"}}}
        params_schema = {"type": "object", "required": ["token"]}

        def __init__(self, token: str, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.token = token

        async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
            return {}

    async def skill() -> dict[str, Any]:
        async with in_process() as server:
            card = (await server.http.get("/.well-known/agent-card.json")).json()
        found: dict[str, Any] = {s["id"]: s for s in card["skills"]}["a2a_test_guarded"]
        return found

    try:
        off = await skill()
        monkeypatch.setenv("AIPARTNERUPFLOW_ENABLED_EXECUTORS", "other, a2a_test_guarded")
        reload_settings()
        on = await skill()
    finally:
        get_executor_registry().unregister("a2a_test_guarded")
    example = json.loads(off["examples"][0])["tasks"][0]["schemas"]
    assert example["input_schema"] == Guarded.input_schema
    assert example["params_schema"] == {"type": "object", "required": ["token"]}
    assert "dangerous" in off["tags"]
    assert off["description"].endswith("not enabled on this server.")
    assert on["description"].endswith(" enabled on this server.")
    assert "not enabled" not in on["description"]
