"""CommandSettings: variable names, validation of the operator's values, discovery."""

from __future__ import annotations

from importlib import metadata

import pytest

from aipartnerupflow.core.errors import ConfigurationError
from aipartnerupflow.core.settings import SETTINGS_GROUP
from aipartnerupflow.extensions.stdio import CommandSettings


def test_defaults_allow_nothing() -> None:
    settings = CommandSettings.from_env({})
    assert settings.allowed_executables == ()
    assert settings.allowed_dirs == ()
    assert settings.env_allow == ()
    assert settings.inherit_env == ("HOME", "LANG")
    assert settings.search_path == "/usr/local/bin:/usr/bin:/bin"


def test_variables_follow_the_naming_rule() -> None:
    names = {v.name for v in CommandSettings.variables()}
    assert {
        "AIPARTNERUPFLOW_COMMAND_ALLOWED_EXECUTABLES",
        "AIPARTNERUPFLOW_COMMAND_ALLOWED_DIRS",
        "AIPARTNERUPFLOW_COMMAND_ENV_ALLOW",
        "AIPARTNERUPFLOW_COMMAND_SEARCH_PATH",
        "AIPARTNERUPFLOW_COMMAND_MAX_OUTPUT_BYTES",
    } <= names
    assert all(name.startswith("AIPARTNERUPFLOW_COMMAND_") for name in names)


def test_lists_are_comma_separated() -> None:
    settings = CommandSettings.from_env(
        {
            "AIPARTNERUPFLOW_COMMAND_ALLOWED_EXECUTABLES": " ls, /usr/bin/git ,,",
            "AIPARTNERUPFLOW_COMMAND_SEARCH_PATH": "/usr/bin::/bin:",
        }
    )
    assert settings.allowed_executables == ("ls", "/usr/bin/git")
    assert settings.search_path == "/usr/bin:/bin"  # empty entries would mean the cwd


def test_the_original_whitelist_is_a_fallback() -> None:
    env = {"AIPARTNERUPFLOW_STDIO_COMMAND_WHITELIST": "ls,cat"}
    assert CommandSettings.from_env(env).allowed_executables == ("ls", "cat")
    env["AIPARTNERUPFLOW_COMMAND_ALLOWED_EXECUTABLES"] = "echo"
    assert CommandSettings.from_env(env).allowed_executables == ("echo",)


@pytest.mark.parametrize(
    ("variable", "value", "match"),
    [
        ("AIPARTNERUPFLOW_COMMAND_SEARCH_PATH", "bin:/usr/bin", "absolute"),
        ("AIPARTNERUPFLOW_COMMAND_SEARCH_PATH", ".", "absolute"),
        ("AIPARTNERUPFLOW_COMMAND_ALLOWED_DIRS", "/srv,data", "absolute"),
        ("AIPARTNERUPFLOW_COMMAND_ALLOWED_EXECUTABLES", "ls,./tool", "absolute path or a bare"),
        ("AIPARTNERUPFLOW_COMMAND_MAX_OUTPUT_BYTES", "-1", "MAX_OUTPUT_BYTES"),
        ("AIPARTNERUPFLOW_COMMAND_MAX_TIMEOUT", "nan", "MAX_TIMEOUT"),
        ("AIPARTNERUPFLOW_COMMAND_KILL_GRACE", "soon", "KILL_GRACE"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match) as caught:
        CommandSettings.from_env({variable: value})
    assert variable in str(caught.value)


def test_registered_for_the_configuration_reference() -> None:
    found = [ep for ep in metadata.entry_points(group=SETTINGS_GROUP) if ep.name == "command"]
    assert found and found[0].load() is CommandSettings
