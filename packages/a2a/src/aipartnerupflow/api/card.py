"""The agent card: interfaces, capabilities, security and one skill per installed executor."""

from __future__ import annotations

import json
import logging
from importlib import metadata
from typing import Any

from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentProvider,
    AgentSkill,
    HTTPAuthSecurityScheme,
    SecurityRequirement,
    SecurityScheme,
    StringList,
)

from aipartnerupflow.api.config import ServerSettings
from aipartnerupflow.core.registry import ExecutorRegistry, get_executor_registry

__all__ = [
    "LEGACY_PROTOCOL_VERSION",
    "PROTOCOL_VERSION",
    "RUN_SKILL_ID",
    "build_agent_card",
    "card_cache_control",
    "executor_skills",
]

log = logging.getLogger("aipartnerupflow.api.card")

PROTOCOL_VERSION = "1.0"
#: The older protocol the JSON-RPC endpoint also answers (listed only when opted in).
LEGACY_PROTOCOL_VERSION = "0.3"
RUN_SKILL_ID = "run_task_tree"
_SECURITY_SCHEME = "bearer"
_DATA_MODE = "application/json"


def _version() -> str:
    try:
        return metadata.version("aipartnerupflow-a2a")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


def executor_skills(registry: ExecutorRegistry | None = None) -> list[AgentSkill]:
    """One skill per installed executor; its example is a task using it, with its schemas.

    The metadata comes from the class (:func:`executor_info`), never from an instance, so an
    executor that needs params keeps its schema. A dangerous executor is tagged ``dangerous``
    and says whether this server enables it. One that cannot be imported is still listed,
    without schema.
    """
    from aipartnerupflow.core.executors.metadata import executor_info
    from aipartnerupflow.core.settings import CoreSettings

    registry = registry or get_executor_registry()
    core = CoreSettings.get()
    skills = []
    for executor_id in registry.ids():
        name, description, tags = executor_id, f"Run a task with the {executor_id} executor.", []
        schemas: dict[str, Any] = {"method": executor_id}
        extra_examples: list[str] = []
        try:
            info = executor_info(registry.get(executor_id), executor_id)
        except Exception as exc:
            log.warning("executor %s cannot be described: %s", executor_id, exc)
        else:
            name = info.name or executor_id
            description = info.description or description
            tags = [str(t) for t in info.tags]
            extra_examples = [
                json.dumps(e, default=str) for e in info.examples if isinstance(e, dict)
            ]
            if info.schema_note is None:
                schemas["input_schema"] = info.input_schema
            if info.params_schema is not None:
                schemas["params_schema"] = info.params_schema
            if info.dangerous:
                enabled = core.executor_enabled(executor_id)
                tags.append("dangerous")
                description += (
                    " Dangerous (reaches the host or the network on a task's say-so); "
                    + ("enabled on this server." if enabled else "not enabled on this server.")
                )
        task = {"name": f"{executor_id} task", "schemas": schemas, "inputs": {}}
        example = json.dumps({"tasks": [task]}, default=str)
        skills.append(
            AgentSkill(
                id=executor_id,
                name=name,
                description=description,
                tags=[*tags, "executor"],
                examples=[example, *extra_examples],
                input_modes=[_DATA_MODE],
                output_modes=[_DATA_MODE],
            )
        )
    return skills


def _run_skill() -> AgentSkill:
    example = {
        "tasks": [
            {"id": "fetch", "name": "fetch", "schemas": {"method": "<executor id>"}, "inputs": {}},
            {
                "id": "report",
                "name": "report",
                "parent_id": "fetch",
                "dependencies": ["fetch"],
                "schemas": {"method": "<executor id>"},
            },
        ]
    }
    return AgentSkill(
        id=RUN_SKILL_ID,
        name="Run a task tree",
        description=(
            'Send a message with one data part {"tasks": [...]} (the same task JSON as the '
            "CLI). The tree is created and run; each task's status and progress is streamed, "
            "each task's result comes back as an artifact, and the A2A task ends completed, "
            "failed or canceled like the tree."
        ),
        tags=["orchestration", "task-tree"],
        examples=[json.dumps(example)],
        input_modes=[_DATA_MODE],
        output_modes=[_DATA_MODE],
    )


def card_cache_control(settings: ServerSettings) -> str:
    """The agent card's ``Cache-Control`` header (the card also carries an ETag)."""
    if settings.card_cache_seconds <= 0:
        return "no-cache"
    return f"public, max-age={settings.card_cache_seconds}"


def build_agent_card(
    settings: ServerSettings,
    registry: ExecutorRegistry | None = None,
    *,
    skills: list[AgentSkill] | None = None,
    description: str | None = None,
) -> AgentCard:
    """The agent card served at ``/.well-known/agent-card.json``."""
    base = settings.public_base_url
    card = AgentCard(
        name=settings.agent_name,
        description=description
        or (
            "aipartnerupflow: runs task trees (dependencies, priorities, retries) over the "
            "installed executors and reports every task's progress and result."
        ),
        version=_version(),
        supported_interfaces=[
            AgentInterface(
                protocol_binding="JSONRPC", protocol_version=PROTOCOL_VERSION, url=f"{base}/"
            ),
            AgentInterface(
                protocol_binding="HTTP+JSON", protocol_version=PROTOCOL_VERSION, url=base
            ),
        ],
        provider=AgentProvider(
            organization="aipartnerup", url="https://github.com/aipartnerup/aipartnerupflow"
        ),
        capabilities=AgentCapabilities(
            streaming=True, push_notifications=True, extended_agent_card=False
        ),
        default_input_modes=[_DATA_MODE],
        default_output_modes=[_DATA_MODE],
        skills=skills if skills is not None else [_run_skill(), *executor_skills(registry)],
    )
    if settings.advertise_v0_3:
        # The SDK adds the 0.3 card fields (url, protocolVersion, preferredTransport) from it.
        card.supported_interfaces.append(
            AgentInterface(
                protocol_binding="JSONRPC", protocol_version=LEGACY_PROTOCOL_VERSION, url=f"{base}/"
            )
        )
    if settings.auth_enabled:
        fmt = "JWT"
        card.security_schemes[_SECURITY_SCHEME].CopyFrom(
            SecurityScheme(
                http_auth_security_scheme=HTTPAuthSecurityScheme(
                    scheme="Bearer",
                    bearer_format=fmt,
                    description="A JWT whose 'sub' claim names the user; tasks are scoped to it.",
                )
            )
        )
        card.security_requirements.append(
            SecurityRequirement(schemes={_SECURITY_SCHEME: StringList()})
        )
    return card
