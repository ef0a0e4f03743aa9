"""The callback and webhook URL guard: private targets in any spelling, one refusal text."""

from __future__ import annotations

import asyncio

import pytest

from infra.url_policy import REFUSED, is_public_address, resolved_hosts, target_problem


def problem(url: str, allow_private: bool = False) -> str | None:
    return asyncio.run(target_problem(url, allow_private, resolved_hosts()))


@pytest.mark.parametrize(
    "url",
    [
        "http://[::127.0.0.1]/",  # IPv4-compatible
        "http://[::10.0.0.1]/hook",
        "http://[::ffff:127.0.0.1]/",  # IPv4-mapped
        "http://[64:ff9b::127.0.0.1]/",  # NAT64
        "http://[64:ff9b::a9fe:a9fe]/latest",  # NAT64 of 169.254.169.254
        "http://[64:ff9b:1::10.0.0.1]/",  # local-use NAT64
        "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
        "http://[2002:a9fe:a9fe::1]/",  # 6to4 of 169.254.169.254
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",  # Teredo, client 127.0.0.1
    ],
)
def test_ipv6_forms_that_embed_a_private_ipv4_address_are_refused(url: str) -> None:
    assert problem(url) == REFUSED


@pytest.mark.parametrize(
    "address",
    ["::93.184.215.14", "64:ff9b::93.184.215.14", "2002:5db8:d70e::1", "2606:2800:220:1::1"],
)
def test_ipv6_forms_that_embed_a_public_address_are_public(address: str) -> None:
    assert is_public_address(address)


@pytest.mark.parametrize(
    "url",
    [
        " https://93.184.215.14/hook",
        "https://93.184.215.14/hook ",
        "https://93.184.215.14/hook\n",
        "\thttps://93.184.215.14/hook",
        "https://93.184.215.14/ho ok",
        "https://93.184.215.14/hook\x00",
        "https://93.184.215.14/hook\x7f",
        "https://93.184.215.14/hook\u00a0",
    ],
)
def test_whitespace_or_control_characters_are_refused_even_where_private_is_allowed(
    url: str,
) -> None:
    assert problem(url) == REFUSED
    assert problem(url, allow_private=True) == REFUSED


def test_every_refusal_reads_the_same() -> None:
    refusals = {
        problem(url)
        for url in (
            "http://127.0.0.1/hook",  # private
            "http://localhost/hook",  # resolves to private
            "http://does-not-exist.invalid/hook",  # does not resolve
            "ftp://93.184.215.14/hook",  # scheme
            "http://user:pw@93.184.215.14/hook",  # credentials
            "http://93.184.215.14:99999/hook",  # port
            "not a url",
        )
    }
    assert refusals == {REFUSED}
    assert "localhost" not in REFUSED and "resolve" not in REFUSED


def test_public_targets_pass() -> None:
    assert problem("https://93.184.215.14/hook") is None
    assert problem("http://[2606:2800:220:1::1]:8443/hook?x=1") is None
