"""The settings model is published for the configuration reference and reads its variables."""

from __future__ import annotations

from importlib import metadata

from aipartnerupflow.extensions.websocket import WebSocketSettings


def test_settings_entry_point() -> None:
    found = [
        ep
        for ep in metadata.entry_points(group="aipartnerupflow.settings")
        if ep.name == "websocket"
    ]
    assert [ep.load() for ep in found] == [WebSocketSettings]


def test_variables_and_fallbacks() -> None:
    by_name = {v.name: v for v in WebSocketSettings.variables()}
    assert by_name["AIPARTNERUPFLOW_WEBSOCKET_ALLOW_PRIVATE"].fallback == (
        "AIPARTNERUPFLOW_ALLOW_PRIVATE"
    )
    assert by_name["AIPARTNERUPFLOW_WEBSOCKET_ALLOWED_HOSTS"].fallback == (
        "AIPARTNERUPFLOW_ALLOWED_HOSTS"
    )
    assert by_name["AIPARTNERUPFLOW_WEBSOCKET_MAX_MESSAGE_BYTES"].default == 1024 * 1024
    assert all(v.description for v in by_name.values())


def test_from_env() -> None:
    settings = WebSocketSettings.from_env(
        {
            "AIPARTNERUPFLOW_ALLOWED_HOSTS": "a.example, 10.0.0.0/8",
            "AIPARTNERUPFLOW_WEBSOCKET_MAX_MESSAGES": "5",
        }
    )
    assert settings.allowed_hosts == ("a.example", "10.0.0.0/8")
    assert settings.max_messages == 5
    assert settings.allow_private is False
    assert settings.policy().setting_prefix == "AIPARTNERUPFLOW_WEBSOCKET_"
