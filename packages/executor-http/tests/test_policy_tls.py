"""The outbound policy (default deny of non-public addresses, allowed hosts) and TLS."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from aipartnerupflow.core.errors import ConfigurationError
from aipartnerupflow.extensions.http import (
    HttpConnectionError,
    HttpTlsError,
    OutboundPolicy,
    OutboundPolicyError,
    RestExecutor,
    set_default_policy,
)
from aipartnerupflow.extensions.http.policy import (
    DEFAULT_MAX_RESPONSE_BYTES,
    ENV_ALLOW_PRIVATE,
    ENV_ALLOWED_HOSTS,
    ENV_CA_BUNDLE,
    ENV_MAX_RESPONSE_BYTES,
)


async def run(inputs: dict[str, Any], executor: RestExecutor | None = None) -> dict[str, Any]:
    return await (executor or RestExecutor()).execute(inputs)


@pytest.fixture
def default_policy(set_env: Any) -> None:
    """The policy an operator gets without configuring anything."""
    set_env(ENV_ALLOW_PRIVATE, None)


# -- defaults -------------------------------------------------------------------------------


@pytest.mark.usefixtures("default_policy")
async def test_loopback_is_denied_by_default(http_server: Any) -> None:
    with pytest.raises(OutboundPolicyError) as info:
        await run({"url": http_server.url + "/echo"})
    message = str(info.value)
    assert message.startswith(f"GET {http_server.url}/echo: ")
    assert "loopback" in message
    assert ENV_ALLOW_PRIVATE in message
    assert http_server.state.requests == []


@pytest.mark.usefixtures("default_policy")
async def test_names_resolving_to_loopback_are_denied(http_server: Any) -> None:
    url = http_server.url.replace("127.0.0.1", "localhost") + "/echo"
    with pytest.raises(OutboundPolicyError, match=r"'localhost'.*loopback"):
        await run({"url": url})
    assert http_server.state.requests == []


@pytest.mark.usefixtures("default_policy")
async def test_redirect_to_loopback_is_denied(http_server: Any) -> None:
    # The first hop is allowed through the allowed network, the redirect's target name is not
    set_default_policy(OutboundPolicy(allowed_hosts=("127.0.0.1/32",)))
    other = http_server.url.replace("127.0.0.1", "localhost")
    with pytest.raises(OutboundPolicyError, match="'localhost' is not in the allowed hosts"):
        await run({"url": f"{http_server.url}/redirect?to={other}/echo", "follow_redirects": True})
    assert [r["path"] for r in http_server.state.requests] == ["/redirect"]


@pytest.mark.usefixtures("default_policy")
async def test_allowed_network_reaches_loopback(http_server: Any) -> None:
    set_default_policy(OutboundPolicy(allowed_hosts=("127.0.0.0/8",)))
    result = await run({"url": http_server.url + "/echo"})
    assert result["status_code"] == 200


@pytest.mark.usefixtures("default_policy")
async def test_allowed_name_still_needs_a_public_address(http_server: Any) -> None:
    set_default_policy(OutboundPolicy(allowed_hosts=("localhost",)))
    with pytest.raises(OutboundPolicyError, match="loopback"):
        await run({"url": http_server.url.replace("127.0.0.1", "localhost") + "/echo"})


async def test_allowed_hosts_from_the_environment(http_server: Any, set_env: Any) -> None:
    set_env(ENV_ALLOWED_HOSTS, "api.example.com, *.example.org")
    with pytest.raises(OutboundPolicyError) as info:
        await run({"url": http_server.url + "/echo"})
    assert "'127.0.0.1' is not in the allowed hosts" in str(info.value)
    assert ENV_ALLOWED_HOSTS in str(info.value)
    set_env(ENV_ALLOWED_HOSTS, "api.example.com, localhost")
    result = await run({"url": http_server.url.replace("127.0.0.1", "localhost") + "/echo"})
    assert result["status_code"] == 200


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://h/"])
async def test_only_http_and_https(url: str) -> None:
    with pytest.raises(OutboundPolicyError, match="only http and https"):
        await run({"url": url})


# -- where the policy comes from ------------------------------------------------------------


@pytest.mark.usefixtures("default_policy")
async def test_policy_precedence(http_server: Any) -> None:
    allow = OutboundPolicy(allow_private=True)
    deny = OutboundPolicy()

    class Internal(RestExecutor):
        policy: ClassVar[OutboundPolicy | None] = allow

    url = http_server.url + "/echo"
    assert (await run({"url": url}, Internal()))["status_code"] == 200
    with pytest.raises(OutboundPolicyError):
        await run({"url": url}, Internal(policy=deny))
    set_default_policy(allow)
    assert (await run({"url": url}))["status_code"] == 200
    set_default_policy(None)
    with pytest.raises(OutboundPolicyError):
        await run({"url": url})


async def test_task_params_cannot_loosen_the_policy(
    http_server: Any, run_tree: Any, set_env: Any
) -> None:
    set_env(ENV_ALLOW_PRIVATE, None)
    from aipartnerupflow.core.errors import TaskTreeValidationError

    task = {
        "id": "p",
        "name": "p",
        "schemas": {"method": "rest_executor"},
        "params": {"policy": {"allow_private": True}},
        "inputs": {"url": http_server.url + "/echo"},
    }
    with pytest.raises(TaskTreeValidationError, match="only be set from Python"):
        await run_tree([task])
    assert http_server.state.requests == []


def test_from_env() -> None:
    env = {
        ENV_ALLOWED_HOSTS: " API.example.com. ,10.0.0.0/8,,",
        ENV_ALLOW_PRIVATE: "yes",
        ENV_MAX_RESPONSE_BYTES: "1234",
        ENV_CA_BUNDLE: "/tmp/ca.pem",
    }
    policy = OutboundPolicy.from_env(env)
    assert policy == OutboundPolicy(
        allowed_hosts=("api.example.com", "10.0.0.0/8"),
        allow_private=True,
        max_response_bytes=1234,
        ca_bundle="/tmp/ca.pem",
    )
    assert OutboundPolicy.from_env({}) == OutboundPolicy()
    assert OutboundPolicy().max_response_bytes == DEFAULT_MAX_RESPONSE_BYTES
    assert hash(policy) == hash(OutboundPolicy.from_env(env))


@pytest.mark.parametrize(
    ("name", "value"), [(ENV_ALLOW_PRIVATE, "maybe"), (ENV_MAX_RESPONSE_BYTES, "1MB")]
)
def test_bad_environment_values(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        OutboundPolicy.from_env({name: value})


@pytest.mark.parametrize(
    ("entries", "host", "allowed"),
    [
        ((), "anything.example", True),
        (("api.example.com",), "API.example.com", True),
        (("api.example.com",), "evil-api.example.com", False),
        (("*.example.com",), "a.b.example.com", True),
        (("*.example.com",), "example.com", False),
        (("*.example.com",), "badexample.com", False),
        ((".example.com",), "x.example.com", True),
        (("10.0.0.0/8",), "10.1.2.3", True),
        (("10.0.0.0/8",), "11.0.0.1", False),
        (("::1",), "[::1]", True),
        (("*",), "whatever", True),
    ],
)
def test_host_matching(entries: tuple[str, ...], host: str, allowed: bool) -> None:
    assert OutboundPolicy(allowed_hosts=entries).host_allowed(host) is allowed


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("172.16.0.1", "private"),
        ("169.254.1.1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "non-public"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("224.0.0.1", "multicast"),
    ],
)
def test_non_public_addresses_are_denied(address: str, kind: str) -> None:
    with pytest.raises(OutboundPolicyError, match=f"a {kind} address"):
        OutboundPolicy().check_address("h", address)
    OutboundPolicy(allow_private=True).check_address("h", address)


@pytest.mark.parametrize("address", ["169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254"])
def test_metadata_endpoints_are_denied_even_with_private_allowed(address: str) -> None:
    with pytest.raises(OutboundPolicyError, match="cloud metadata endpoint"):
        OutboundPolicy(allow_private=True).check_address("h", address)


def test_global_settings_are_the_fallback(set_env: Any) -> None:
    from aipartnerupflow.extensions.http import get_default_policy

    set_env(ENV_ALLOW_PRIVATE, None)
    set_env("AIPARTNERUPFLOW_ALLOWED_HOSTS", "hooks.example")
    set_env("AIPARTNERUPFLOW_SECRET_ENV", "SHARED_TOKEN")
    policy = get_default_policy()
    assert (policy.allow_private, policy.allowed_hosts) == (False, ("hooks.example",))
    assert policy.secret_env == ("SHARED_TOKEN",)
    set_env("AIPARTNERUPFLOW_ALLOW_PRIVATE", "true")
    assert get_default_policy().allow_private is True
    set_env(ENV_ALLOW_PRIVATE, "false")  # the executor's own variable wins
    assert get_default_policy().allow_private is False


def test_settings_are_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from aipartnerupflow.core.settings import reload_settings
    from aipartnerupflow.extensions.http import get_default_policy

    first = get_default_policy()
    monkeypatch.setenv(ENV_ALLOWED_HOSTS, "later.example")
    assert get_default_policy() is first  # not re-read per request
    reload_settings()
    assert get_default_policy().allowed_hosts == ("later.example",)


@pytest.mark.usefixtures("default_policy")
@pytest.mark.parametrize("host", ["2130706433", "0x7f000001", "127.1", "[::ffff:127.0.0.1]"])
async def test_ip_literal_spellings_of_loopback_are_denied(http_server: Any, host: str) -> None:
    with pytest.raises(OutboundPolicyError, match="loopback"):
        await run({"url": f"http://{host}:{http_server.server.port}/echo"})
    assert http_server.state.requests == []


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::6810:84e5", "8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    OutboundPolicy().check_address("h", address)


def test_address_in_an_allowed_network_is_allowed() -> None:
    policy = OutboundPolicy(allowed_hosts=("10.1.0.0/16",))
    policy.check_address("h", "10.1.2.3")
    with pytest.raises(OutboundPolicyError):
        policy.check_address("h", "10.2.0.1")


# -- TLS ------------------------------------------------------------------------------------


async def test_tls_verification_on_rejects_an_untrusted_certificate(https_server: Any) -> None:
    with pytest.raises(HttpTlsError) as info:
        await run({"url": https_server.url + "/echo"})
    message = str(info.value)
    assert message.startswith(f"GET {https_server.url}/echo failed: cannot connect")
    assert "certificate verify failed" in message.lower()
    assert ENV_CA_BUNDLE in message
    assert https_server.state.requests == []


async def test_tls_verification_off(https_server: Any) -> None:
    result = await run({"url": https_server.url + "/echo", "verify": False})
    assert result["status_code"] == 200
    assert result["url"].startswith("https://")


async def test_tls_with_a_trusted_ca_bundle(
    https_server: Any, ca_bundle: str, set_env: Any
) -> None:
    set_env(ENV_CA_BUNDLE, ca_bundle)
    result = await run({"url": https_server.url + "/echo"})
    assert result["status_code"] == 200
    localhost = https_server.url.replace("127.0.0.1", "localhost")
    assert (await run({"url": localhost + "/echo"}))["status_code"] == 200


async def test_missing_ca_bundle(https_server: Any, set_env: Any) -> None:
    set_env(ENV_CA_BUNDLE, "/nonexistent/ca.pem")
    with pytest.raises(ConfigurationError, match="cannot load the CA bundle"):
        await run({"url": https_server.url + "/echo"})


# -- resolution: every address is checked, and the connection uses a checked one ------------


def fake_resolver(mapping: dict[str, list[str]]) -> Any:
    import socket

    async def getaddrinfo(host: str, port: int, **_: Any) -> list[Any]:
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in mapping[host]
        ]

    return getaddrinfo


@pytest.mark.usefixtures("default_policy")
async def test_every_resolved_address_is_checked(
    http_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    resolver = fake_resolver({"rebind.test": ["93.184.215.14", "127.0.0.1"]})
    monkeypatch.setattr(loop, "getaddrinfo", resolver)
    with pytest.raises(OutboundPolicyError, match=r"'rebind\.test'.*loopback"):
        await run({"url": f"http://rebind.test:{http_server.server.port}/echo"})
    assert http_server.state.requests == []


async def test_connection_goes_to_the_checked_address(
    http_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    monkeypatch.setattr(loop, "getaddrinfo", fake_resolver({"service.test": ["127.0.0.1"]}))
    port = http_server.server.port
    result = await run({"url": f"http://service.test:{port}/echo"})
    assert result["status_code"] == 200
    assert http_server.state.requests[-1]["headers"]["host"] == f"service.test:{port}"


async def test_unknown_host(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import socket

    async def fail(*_: Any, **__: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", fail)
    with pytest.raises(HttpConnectionError, match=r"cannot resolve 'nowhere\.test'"):
        await run({"url": "http://nowhere.test/"})
