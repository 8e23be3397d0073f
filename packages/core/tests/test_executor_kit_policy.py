"""OutboundPolicy: IP literal tricks, metadata endpoints, allow lists, resolution and pinning.

Connections go to real sockets on loopback; only name resolution is replaced (a fake
``getaddrinfo`` on the running loop), since no test DNS server can answer for made-up names.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from aipartnerupflow.core.errors import ConfigurationError, OutboundPolicyError
from aipartnerupflow.core.executors import OutboundPolicy, normalise_host
from aipartnerupflow.testing.resolver import FakeResolver

LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "127.1",
    "2130706433",
    "0x7f000001",
    "0x7f.0.0.1",
    "0177.0.0.1",
    "::ffff:127.0.0.1",
    "[::ffff:127.0.0.1]",
    "::ffff:7f00:1",
    "127.0.0.1.",
    "::1",
    "[::1]",
]


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
def test_every_spelling_of_loopback_is_denied(host: str) -> None:
    with pytest.raises(OutboundPolicyError, match="loopback"):
        OutboundPolicy().check_host(host)


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
def test_every_spelling_of_loopback_is_allowed_with_allow_private(host: str) -> None:
    assert OutboundPolicy(allow_private=True).check_host(host) in {"127.0.0.1", "::1"}


@pytest.mark.parametrize(
    ("host", "canonical"),
    [
        ("127.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("0xa9fea9fe", "169.254.169.254"),
        ("Example.COM.", "example.com"),
        ("[2001:db8::1]", "2001:db8::1"),
    ],
)
def test_hosts_are_normalised(host: str, canonical: str) -> None:
    assert normalise_host(host) == canonical


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://10.0.0.5/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://0x0a000001/", "private"),
        ("http://169.254.1.1/", "link-local"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[fc00::1]/", "private"),
    ],
)
def test_non_public_addresses_are_denied_by_default(url: str, kind: str) -> None:
    with pytest.raises(OutboundPolicyError, match=kind):
        OutboundPolicy().check_url(url)


def test_public_address_is_allowed() -> None:
    target = OutboundPolicy().check_url("https://93.184.215.14/x")
    assert (target.scheme, target.host, target.port) == ("https", "93.184.215.14", 443)


@pytest.mark.parametrize(
    "host",
    [
        "169.254.169.254",
        "0xa9fea9fe",
        "2852039166",
        "::ffff:169.254.169.254",
        "169.254.170.2",
        "fd00:ec2::254",
        "[fd00:ec2::254]",
        "100.100.100.200",
        "metadata.google.internal",
        "METADATA.google.internal.",
        "metadata",
    ],
)
def test_metadata_endpoints_denied_even_with_allow_private(host: str) -> None:
    policy = OutboundPolicy(allow_private=True)
    with pytest.raises(OutboundPolicyError, match="metadata endpoint"):
        policy.check_host(host)


def test_metadata_endpoint_denied_inside_an_allowed_network() -> None:
    policy = OutboundPolicy(allowed_hosts=("169.254.0.0/16",), allow_private=True)
    assert policy.check_host("169.254.1.2") == "169.254.1.2"
    with pytest.raises(OutboundPolicyError, match="metadata endpoint"):
        policy.check_host("169.254.169.254")


def test_metadata_endpoint_allowed_when_listed_exactly() -> None:
    assert OutboundPolicy(allowed_hosts=("169.254.169.254",)).check_host("0xa9fea9fe") == (
        "169.254.169.254"
    )
    named = OutboundPolicy(allowed_hosts=("metadata.google.internal",))
    assert named.check_host("metadata.google.internal") == "metadata.google.internal"


async def test_a_name_resolving_to_a_metadata_address_is_denied_with_allow_private(
    resolver: FakeResolver,
) -> None:
    resolver.add("innocent.test", "169.254.169.254")
    with pytest.raises(OutboundPolicyError, match="metadata endpoint"):
        await OutboundPolicy(allow_private=True).resolve("innocent.test", 80)


def test_cidr_allow_lifts_the_private_denial_only_inside_the_network() -> None:
    policy = OutboundPolicy(allowed_hosts=("10.1.0.0/16",))
    assert policy.check_host("10.1.2.3") == "10.1.2.3"
    assert policy.check_host("0x0a010203") == "10.1.2.3"
    with pytest.raises(OutboundPolicyError, match="not in the allowed hosts"):
        policy.check_host("10.2.0.1")
    with pytest.raises(OutboundPolicyError, match="not in the allowed hosts"):
        policy.check_host("example.com")


def test_allowed_hosts_from_a_comma_string_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="list of hosts"):
        OutboundPolicy(allowed_hosts="a.example.com,b.example.com")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("a.example.com", True),
        ("a.b.example.com", True),
        ("A.Example.Com.", True),
        ("example.com", False),
        ("evilexample.com", False),
        ("example.com.evil.test", False),
        ("api.other.org", True),
        ("x.api.other.org", False),
    ],
)
def test_wildcards_and_exact_names(host: str, allowed: bool) -> None:
    policy = OutboundPolicy(allowed_hosts=("*.example.com", "api.other.org"))
    assert policy.host_allowed(host) is allowed


def test_messages_name_the_settings_to_change() -> None:
    policy = OutboundPolicy(setting_prefix="AIPARTNERUPFLOW_HTTP_")
    with pytest.raises(OutboundPolicyError) as denied:
        policy.check_host("127.0.0.1")
    assert "AIPARTNERUPFLOW_HTTP_ALLOW_PRIVATE" in str(denied.value)
    listed = OutboundPolicy(allowed_hosts=("a.test",), setting_prefix="AIPARTNERUPFLOW_X_")
    with pytest.raises(OutboundPolicyError, match="AIPARTNERUPFLOW_X_ALLOWED_HOSTS"):
        listed.check_host("b.test")


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("ftp://example.com/", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("http:///nohost", "no host"),
        ("http://example.com:99999/", "not a valid URL"),
    ],
)
def test_bad_urls_are_refused(url: str, match: str) -> None:
    with pytest.raises(OutboundPolicyError, match=match):
        OutboundPolicy().check_url(url)


def test_url_userinfo_is_not_repeated_in_messages() -> None:
    with pytest.raises(OutboundPolicyError) as denied:
        OutboundPolicy().check_url("http://user:hunter2@127.0.0.1/")
    assert "hunter2" not in str(denied.value)


# -- resolution and connection -------------------------------------------------------------


@pytest.fixture
async def resolver(monkeypatch: pytest.MonkeyPatch) -> FakeResolver:
    return FakeResolver().install(monkeypatch)


async def test_resolve_checks_every_address(resolver: FakeResolver) -> None:
    resolver.add("rebind.test", "93.184.215.14", "127.0.0.1")
    with pytest.raises(OutboundPolicyError, match="loopback"):
        await OutboundPolicy().resolve("rebind.test", 80)


async def test_resolve_returns_the_checked_addresses(resolver: FakeResolver) -> None:
    resolver.add("two.test", "93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c")
    addresses = await OutboundPolicy().resolve("two.test", 443)
    assert addresses == ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]


async def test_real_resolution_of_localhost_is_denied() -> None:
    with pytest.raises(OutboundPolicyError, match="loopback"):
        await OutboundPolicy().resolve("localhost", 80)


async def test_unresolvable_name_is_a_connection_error(resolver: FakeResolver) -> None:
    with pytest.raises(ConnectionError, match=r"cannot resolve 'nowhere\.test'"):
        await OutboundPolicy().resolve("nowhere.test", 80)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server
    server.close()


async def test_connect_pins_to_the_checked_address(
    resolver: FakeResolver, listener: socket.socket
) -> None:
    port = listener.getsockname()[1]
    resolver.add("service.test", "127.0.0.1")
    policy = OutboundPolicy(allow_private=True)
    sock = await policy.connect("service.test", port)
    try:
        assert sock.getpeername() == ("127.0.0.1", port)
    finally:
        sock.close()
    # One resolution, by the policy; nothing resolved the name a second time.
    assert resolver.calls == [("service.test", port)]


async def test_connect_refuses_before_opening_a_socket(
    resolver: FakeResolver, listener: socket.socket
) -> None:
    listener.setblocking(False)
    port = listener.getsockname()[1]
    resolver.add("service.test", "127.0.0.1")
    with pytest.raises(OutboundPolicyError):
        await OutboundPolicy().connect("service.test", port)
    with pytest.raises(BlockingIOError):
        listener.accept()  # nothing ever connected


async def test_connect_tries_the_next_checked_address(
    resolver: FakeResolver, listener: socket.socket
) -> None:
    port = listener.getsockname()[1]
    resolver.add("multi.test", "127.0.0.3", "127.0.0.1")
    # 127.0.0.3 refuses (nothing listens there on this port); 127.0.0.1 answers.
    sock = await OutboundPolicy(allow_private=True).connect("multi.test", port)
    try:
        assert sock.getpeername() == ("127.0.0.1", port)
    finally:
        sock.close()


async def test_connect_failure_names_the_host(resolver: FakeResolver) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    resolver.add("down.test", "127.0.0.1")
    with pytest.raises(ConnectionError, match=r"cannot connect to 'down\.test'"):
        await OutboundPolicy(allow_private=True).connect("down.test", port)


def test_policy_is_hashable_and_compares_by_value() -> None:
    a = OutboundPolicy(allowed_hosts=("A.test",), allow_private=True)
    b = OutboundPolicy(allowed_hosts=["a.test"], allow_private=True)  # type: ignore[arg-type]
    assert a == b
    assert hash(a) == hash(b)
    assert {a: 1}[b] == 1
