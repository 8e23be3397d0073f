"""ServerSettings: one typed model, fallbacks, and clear errors for bad values."""

from __future__ import annotations

import pytest

from aipartnerupflow.api import ServerSettings
from aipartnerupflow.core.errors import ConfigurationError


def test_every_field_reads_its_variable_and_overrides_win() -> None:
    env = {
        "AIPARTNERUPFLOW_API_HOST": "127.0.0.5",
        "AIPARTNERUPFLOW_API_PORT": "9001",
        "AIPARTNERUPFLOW_CORS_ORIGINS": "https://a.example https://b.example",
        "AIPARTNERUPFLOW_RESUME_INTERRUPTED": "off",
        "AIPARTNERUPFLOW_A2A_AGENT": "tck",
        "AIPARTNERUPFLOW_LOG_LEVEL": "ERROR",
        "TCK_STREAMING_TIMEOUT": "0.5",
    }
    settings = ServerSettings.from_env(env, port=None, max_concurrency=3)
    assert (settings.host, settings.port, settings.max_concurrency) == ("127.0.0.5", 9001, 3)
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.resume_interrupted is False
    assert settings.agent == "tck"
    assert settings.log_level == "error"  # the core's variable, in uvicorn's spelling
    assert settings.tck_streaming_timeout == 0.5
    assert ServerSettings.from_env({}).log_level == "info"


def test_global_fallbacks() -> None:
    env = {
        "AIPARTNERUPFLOW_HOST": "127.0.0.9",
        "AIPARTNERUPFLOW_PORT": "9002",
        "AIPARTNERUPFLOW_ALLOW_PRIVATE": "true",
        "AIPARTNERUPFLOW_ALLOWED_HOSTS": "hooks.internal,10.0.0.0/8",
    }
    settings = ServerSettings.from_env(env)
    assert (settings.host, settings.port) == ("127.0.0.9", 9002)
    assert settings.push_allow_private is True
    assert settings.push_allowed_hosts == ("hooks.internal", "10.0.0.0/8")
    own = ServerSettings.from_env({**env, "AIPARTNERUPFLOW_PUSH_ALLOW_PRIVATE": "false"})
    assert own.push_allow_private is False


def test_the_database_url_is_the_cores_variable_only() -> None:
    """Declared once (CoreSettings): the server's field is an option, not a second variable."""
    names = {v.name for v in ServerSettings.variables()}
    assert "AIPARTNERUPFLOW_DATABASE_URL" not in names
    assert "AIPARTNERUPFLOW_LOG_LEVEL" not in names
    assert ServerSettings.from_env({"AIPARTNERUPFLOW_DATABASE_URL": "x"}).database_url is None


@pytest.mark.parametrize(
    ("env", "needles"),
    [
        ({"AIPARTNERUPFLOW_API_PORT": "eighty"}, ["AIPARTNERUPFLOW_API_PORT='eighty'", "integer"]),
        ({"AIPARTNERUPFLOW_PORT": "70000"}, ["AIPARTNERUPFLOW_PORT=", "65535"]),
        (
            {"AIPARTNERUPFLOW_INSECURE": "maybe"},
            ["AIPARTNERUPFLOW_INSECURE='maybe' is not a boolean", "true or false"],
        ),
        ({"AIPARTNERUPFLOW_A2A_AGENT": "other"}, ["AIPARTNERUPFLOW_A2A_AGENT", "flow | tck"]),
        ({"AIPARTNERUPFLOW_MAX_BODY_BYTES": "10"}, ["AIPARTNERUPFLOW_MAX_BODY_BYTES", "1024"]),
        ({"TCK_STREAMING_TIMEOUT": "nan"}, ["TCK_STREAMING_TIMEOUT='nan'", "number"]),
        ({"AIPARTNERUPFLOW_LOG_LEVEL": "loud"}, ["AIPARTNERUPFLOW_LOG_LEVEL", "DEBUG, INFO"]),
    ],
)
def test_bad_values_name_the_variable_and_what_it_accepts(
    env: dict[str, str], needles: list[str]
) -> None:
    with pytest.raises(ConfigurationError) as info:
        ServerSettings.from_env(env)
    for needle in needles:
        assert needle in str(info.value)


def test_unknown_option_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown server option"):
        ServerSettings.from_env({}, colour="blue")
