"""Where the webhook channel may post (`connectors/destinations.py`), host resolution stood in
for by fixed answers, and `localhost` resolved for real."""

from __future__ import annotations

import pytest

from connectors.destinations import DestinationError, Destinations, host_allowed, is_public


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
        ("169.254.169.254", False),  # cloud metadata
        ("10.0.0.5", False),
        ("172.16.3.4", False),
        ("192.168.1.1", False),
        ("127.0.0.1", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("::1", False),
        ("fd00::1", False),
        ("fe80::1%eth0", False),
        ("::ffff:127.0.0.1", False),
        ("224.0.0.1", False),
    ],
)
def test_only_globally_routable_addresses_are_public(address: str, public: bool) -> None:
    assert is_public(address) is public


def test_hosts_match_names_and_subdomain_patterns() -> None:
    patterns = ["hooks.example.com", "*.partner.example"]
    assert host_allowed("hooks.example.com", patterns)
    assert host_allowed("HOOKS.example.com.", patterns)
    assert host_allowed("eu.api.partner.example", patterns)
    assert not host_allowed("partner.example", patterns)  # the pattern names subdomains
    assert not host_allowed("example.com", patterns)
    assert not host_allowed("hooks.example.com.evil.example", patterns)
    assert not host_allowed("evilpartner.example", patterns)


def _answers(table: dict[str, list[str]]) -> Destinations:
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"[Errno -2] Name or service not known: {host}")
        return table[host]

    return Destinations([], resolve)


async def test_a_public_host_is_posted_to_at_the_address_checked() -> None:
    destinations = _answers({"crm.example": ["93.184.215.14"]})
    destination = await destinations.check("https://crm.example:8443/hooks?x=1")
    # The address checked, not a second DNS answer: rebinding cannot move the request.
    assert str(destination.url) == "https://93.184.215.14:8443/hooks?x=1"
    assert destination.headers == {"host": "crm.example:8443"}
    assert destination.extensions == {"sni_hostname": "crm.example"}
    plain = await destinations.check("http://crm.example/h")
    assert (str(plain.url), plain.headers, plain.extensions) == (
        "http://93.184.215.14/h",
        {"host": "crm.example"},
        {},
    )


async def test_private_addresses_and_unknown_hosts_are_refused() -> None:
    destinations = _answers(
        {
            "metadata.internal": ["169.254.169.254"],
            "split.example": ["93.184.215.14", "10.0.0.5"],
        }
    )
    for url, code, permanent in (
        ("http://metadata.internal/latest/meta-data/", "private_address", True),
        ("https://split.example/h", "private_address", True),
        ("https://nowhere.example/h", "unresolvable", False),
        ("ftp://crm.example/h", "bad_url", True),
        ("not a url at all", "bad_url", True),
    ):
        with pytest.raises(DestinationError) as refused:
            await destinations.check(url)
        assert (refused.value.code, refused.value.permanent) == (code, permanent), url
    with pytest.raises(DestinationError, match="ORCHESTRATOR_WEBHOOK_ALLOWED_HOSTS"):
        await destinations.check("http://metadata.internal/")


async def test_localhost_resolved_for_real_is_refused_unless_named() -> None:
    with pytest.raises(DestinationError) as refused:
        await Destinations([]).check("http://localhost:9/hook")
    assert refused.value.code == "private_address"
    named = await Destinations(["localhost"]).check("http://localhost:9/hook")
    assert named.url.host in ("127.0.0.1", "::1")
    assert named.headers == {"host": "localhost:9"}


async def test_an_allow_list_admits_only_its_hosts_wherever_they_resolve() -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return ["10.0.0.7"]

    destinations = Destinations(["*.corp.example"], resolve)
    inside = await destinations.check("https://crm.corp.example/h")
    assert str(inside.url) == "https://10.0.0.7/h"
    with pytest.raises(DestinationError) as refused:
        await destinations.check("https://crm.example/h")
    assert refused.value.code == "host_not_allowed"
