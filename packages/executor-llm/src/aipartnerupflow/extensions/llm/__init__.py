"""LLM executor for aipartnerupflow: ``llm_executor``, on LiteLLM.

Importing this package does not import LiteLLM; the first task does. Shared with other
packages (``generate_executor``): :func:`make_request`, :class:`Caller` (checkpointed calls)
and :func:`parse_json_answer`.
"""

from __future__ import annotations

from aipartnerupflow.extensions.llm.answers import JsonProblem, parse_json_answer
from aipartnerupflow.extensions.llm.calls import Answer, Caller
from aipartnerupflow.extensions.llm.checkpoints import CheckpointStore
from aipartnerupflow.extensions.llm.executor import LLMExecutor, caller_for
from aipartnerupflow.extensions.llm.inputs import INPUT_SCHEMA, Request, make_request
from aipartnerupflow.extensions.llm.settings import LLMSettings

__all__ = [
    "INPUT_SCHEMA",
    "Answer",
    "Caller",
    "CheckpointStore",
    "JsonProblem",
    "LLMExecutor",
    "LLMSettings",
    "Request",
    "caller_for",
    "make_request",
    "parse_json_answer",
]
