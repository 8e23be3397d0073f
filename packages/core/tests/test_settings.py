"""The settings helper and CoreSettings: names, fallbacks, parsing, errors, .env, entry points."""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

import pydantic
import pytest

from aipartnerupflow.core.errors import ConfigurationError
from aipartnerupflow.core.settings import (
    SETTINGS_GROUP,
    CoreSettings,
    Settings,
    load_dotenv,
    parse_bool,
    reload_settings,
)


class ToySettings(Settings):
    """A toy executor's settings."""

    env_prefix = "AIPARTNERUPFLOW_TOY_"

    allow_private: bool = pydantic.Field(
        default=False,
        description="Allow private targets.",
        json_schema_extra={"fallback": "AIPARTNERUPFLOW_ALLOW_PRIVATE"},
    )
    limit: int = pydantic.Field(default=3, ge=1, description="A limit.")
    hosts: tuple[str, ...] = pydantic.Field(default=(), description="Hosts.")
    option: str | None = pydantic.Field(default=None, json_schema_extra={"env": False})


def test_names_follow_the_prefix_and_fallbacks_apply() -> None:
    assert ToySettings.env_name("allow_private") == "AIPARTNERUPFLOW_TOY_ALLOW_PRIVATE"
    assert ToySettings.from_env({"AIPARTNERUPFLOW_ALLOW_PRIVATE": "yes"}).allow_private is True
    own_wins = {"AIPARTNERUPFLOW_ALLOW_PRIVATE": "yes", "AIPARTNERUPFLOW_TOY_ALLOW_PRIVATE": "0"}
    assert ToySettings.from_env(own_wins).allow_private is False
    blank_is_unset = {"AIPARTNERUPFLOW_TOY_LIMIT": "  "}
    assert ToySettings.from_env(blank_is_unset).limit == 3


def test_lists_split_on_commas_and_whitespace() -> None:
    settings = ToySettings.from_env({"AIPARTNERUPFLOW_TOY_HOSTS": " a.example, b.example c ,,"})
    assert settings.hosts == ("a.example", "b.example", "c")


def test_an_option_only_field_is_not_read_nor_listed() -> None:
    assert ToySettings.from_env({"AIPARTNERUPFLOW_TOY_OPTION": "x"}).option is None
    assert ToySettings.from_env({}, option="y").option == "y"
    names = [v.name for v in ToySettings.variables()]
    assert names == [
        "AIPARTNERUPFLOW_TOY_ALLOW_PRIVATE",
        "AIPARTNERUPFLOW_TOY_LIMIT",
        "AIPARTNERUPFLOW_TOY_HOSTS",
    ]
    first = ToySettings.variables()[0]
    assert (first.type, first.default, first.fallback) == (
        "boolean",
        False,
        "AIPARTNERUPFLOW_ALLOW_PRIVATE",
    )


@pytest.mark.parametrize(
    ("env", "needles"),
    [
        (
            {"AIPARTNERUPFLOW_TOY_ALLOW_PRIVATE": "maybe"},
            ["AIPARTNERUPFLOW_TOY_ALLOW_PRIVATE='maybe' is not a boolean", "true or false"],
        ),
        (
            {"AIPARTNERUPFLOW_ALLOW_PRIVATE": "2"},  # the fallback is named when it was read
            ["AIPARTNERUPFLOW_ALLOW_PRIVATE='2' is not a boolean"],
        ),
        ({"AIPARTNERUPFLOW_TOY_LIMIT": "many"}, ["AIPARTNERUPFLOW_TOY_LIMIT='many'", "integer"]),
        (
            {"AIPARTNERUPFLOW_TOY_LIMIT": "0"},
            ["AIPARTNERUPFLOW_TOY_LIMIT='0'", "greater than or equal to 1"],
        ),
    ],
)
def test_bad_values_name_the_variable_and_the_accepted_values(
    env: dict[str, str], needles: list[str]
) -> None:
    with pytest.raises(ConfigurationError) as info:
        ToySettings.from_env(env)
    for needle in needles:
        assert needle in str(info.value)


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"AIPARTNERUPFLOW_LEASE_SECONDS": "nan"}, "AIPARTNERUPFLOW_LEASE_SECONDS='nan'"),
        ({"AIPARTNERUPFLOW_LEASE_SECONDS": "-1"}, "greater than 0"),
        ({"AIPARTNERUPFLOW_LOG_LEVEL": "loud"}, "use one of DEBUG, INFO, WARNING"),
        ({"AIPARTNERUPFLOW_ALLOW_PRIVATE": "sure"}, "use true or false"),
    ],
)
def test_core_settings_refuse_bad_values(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigurationError, match="AIPARTNERUPFLOW_") as info:
        CoreSettings.from_env(env)
    assert needle in str(info.value)


def test_core_settings_values() -> None:
    settings = CoreSettings.from_env(
        {
            "AIPARTNERUPFLOW_ENABLED_EXECUTORS": "a_executor b_executor",
            "AIPARTNERUPFLOW_LOG_LEVEL": "info",
            "AIPARTNERUPFLOW_PLUGINS": "pkg.one,pkg.two",
        }
    )
    assert settings.executor_enabled("b_executor")
    assert not settings.executor_enabled("c_executor")
    assert settings.log_level == "INFO"
    assert settings.plugins == ("pkg.one", "pkg.two")
    assert CoreSettings.from_env({"AIPARTNERUPFLOW_ENABLED_EXECUTORS": "*"}).executor_enabled("x")


def test_parse_bool() -> None:
    assert parse_bool("X", "ON") is True
    assert parse_bool("X", " no ") is False
    assert parse_bool("X", None, default=True) is True
    with pytest.raises(ConfigurationError, match="X='y' is not a boolean"):
        parse_bool("X", "y")


def test_get_reads_once_until_reload(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIPARTNERUPFLOW_TOY_LIMIT", "5")
    reload_settings()
    assert ToySettings.get().limit == 5
    monkeypatch.setenv("AIPARTNERUPFLOW_TOY_LIMIT", "6")
    assert ToySettings.get().limit == 5
    reload_settings()
    assert ToySettings.get().limit == 6
    reload_settings()


def test_load_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# comment\n"
        "export AIPARTNERUPFLOW_TOY_LIMIT=7\n"
        "AIPARTNERUPFLOW_TOY_HOSTS='a b'\n"
        "AIPARTNERUPFLOW_TOY_ALLOW_PRIVATE=true # trailing comment\n"
        "APF_TEST_ALREADY_SET=from-file\n"
    )
    monkeypatch.setenv("APF_TEST_ALREADY_SET", "from-env")
    for name in ("AIPARTNERUPFLOW_TOY_LIMIT", "AIPARTNERUPFLOW_TOY_HOSTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AIPARTNERUPFLOW_TOY_ALLOW_PRIVATE", raising=False)
    monkeypatch.chdir(tmp_path)
    try:
        assert load_dotenv() == env_file
        assert os.environ["APF_TEST_ALREADY_SET"] == "from-env"  # the environment wins
        settings = ToySettings.get()
        assert (settings.limit, settings.hosts, settings.allow_private) == (7, ("a", "b"), True)
    finally:
        for name in ("AIPARTNERUPFLOW_TOY_LIMIT", "AIPARTNERUPFLOW_TOY_HOSTS"):
            os.environ.pop(name, None)
        os.environ.pop("AIPARTNERUPFLOW_TOY_ALLOW_PRIVATE", None)
        reload_settings()
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_dotenv(tmp_path / "missing.env")
    (tmp_path / "bad.env").write_text("NOT A LINE\n")
    with pytest.raises(ConfigurationError, match="expected KEY=value"):
        load_dotenv(tmp_path / "bad.env")


def test_core_registers_its_model() -> None:
    models = {ep.name: ep.load() for ep in metadata.entry_points(group=SETTINGS_GROUP)}
    assert models["core"] is CoreSettings
    for model in models.values():
        assert issubclass(model, Settings)
        for variable in model.variables():
            assert variable.description, f"{variable.name} has no description"
