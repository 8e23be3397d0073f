"""Operator settings of the CrewAI executors (``AIPARTNERUPFLOW_CREWAI_*``)."""

from __future__ import annotations

from pydantic import Field

from aipartnerupflow.core.settings import Settings

__all__ = ["CrewaiSettings"]


class CrewaiSettings(Settings):
    """Which LLM endpoint crews talk to, with which key, and where crewai keeps its files.

    The endpoint and the key are the operator's: task JSON names a model and its options, never
    a URL or a key, so a task cannot send the operator's key elsewhere.
    """

    env_prefix = "AIPARTNERUPFLOW_CREWAI_"

    model: str = Field(
        default="openai/gpt-4o-mini",
        min_length=1,
        description="Model of agents whose JSON names none (provider/model, as crewai.LLM takes).",
    )
    base_url: str | None = Field(
        default=None,
        description="Base URL of the OpenAI-compatible endpoint (e.g. http://127.0.0.1:4000/v1); "
        "unset: the provider's own.",
    )
    api_key: str | None = Field(
        default=None,
        description="API key sent to the LLM endpoint (a secret; unset: the provider's "
        "variable, such as OPENAI_API_KEY).",
    )
    request_timeout: float = Field(
        default=120.0, gt=0, description="Seconds one LLM request may take."
    )
    max_iterations: int = Field(
        default=15, ge=1, description="Most reasoning steps an agent may take per task."
    )
    max_output_bytes: int = Field(
        default=1024 * 1024,
        ge=1,
        description="Most bytes kept of each task output and of the final output.",
    )
    storage_dir: str | None = Field(
        default=None,
        description="Directory crewai keeps its files in (CREWAI_STORAGE_DIR; unset: crewai's "
        "default under the user data directory).",
    )
    telemetry: bool = Field(
        default=False,
        description="Let crewai send its anonymous telemetry and traces (off: "
        "CREWAI_DISABLE_TELEMETRY and CREWAI_TRACING_ENABLED=false are set before import).",
    )
