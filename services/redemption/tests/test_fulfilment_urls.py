"""Which fulfilment URLs the service calls in production: https, and never an address of our own network."""

from __future__ import annotations

import ipaddress
import re

import pytest

from redemption.domain.catalog import UnusableOfferError, check_callable
from redemption.domain.fulfilment_urls import (
    PERMISSIVE,
    RefusedUrlError,
    Target,
    UrlPolicy,
    address_refusal,
    check_addresses,
    check_url,
)

PRODUCTION = UrlPolicy.parse(True, "")


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.5", "private"),
        ("172.16.3.4", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.169.254", "link-local"),  # the cloud metadata endpoint
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "private"),  # Python counts 240/4 among the private ranges too
        ("100.64.0.1", "not a public"),  # carrier-grade NAT
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped: judged as the IPv4 address it is
        ("::ffff:10.0.0.5", "private"),
    ],
)
def test_internal_addresses_are_refused_with_what_they_are(address: str, kind: str):
    why = address_refusal(ipaddress.ip_address(address))
    assert why is not None
    assert kind in why


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_callable(address: str):
    assert address_refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/fulfil", "is not https"),
        ("http://partner.example/fulfil", "is not https"),
        ("https://10.0.0.5/fulfil", "10.0.0.5 is a private address"),
        ("https://127.0.0.1:8443/fulfil", "127.0.0.1 is a loopback address"),
        ("https://[::1]/fulfil", "::1 is a loopback address"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://localhost/fulfil", "inside a private network"),
        ("https://api.localhost/fulfil", "inside a private network"),
        ("https://fulfilment/fulfil", "inside a private network"),  # one label: resolved through search domains
        ("https://printer.local/fulfil", "inside a private network"),
        ("https://metadata.google.internal/x", "inside a private network"),
        ("ftp://partner.example/fulfil", "is not an http(s) URL"),
    ],
)
def test_production_refuses_plain_http_and_internal_hosts(url: str, reason: str):
    with pytest.raises(RefusedUrlError, match=re.escape(reason)):
        check_url(url, PRODUCTION)


def test_production_takes_an_https_url_of_a_public_name_or_address():
    named = check_url("https://Fulfil.Partner.example:8443/f", PRODUCTION)
    assert named == Target("fulfil.partner.example", 8443, None)
    assert check_url("https://93.184.216.34/f", PRODUCTION).address == ipaddress.ip_address("93.184.216.34")


def test_local_runs_and_tests_call_plain_http_on_localhost():
    assert check_url("http://127.0.0.1:9000/fulfil", PERMISSIVE).port == 9000
    check_addresses(Target("localhost", 80, None), [ipaddress.ip_address("127.0.0.1")], PERMISSIVE)


def test_allowed_hosts_and_networks_may_be_internal_but_stay_https():
    allowed = UrlPolicy.parse(True, " fulfil.partner.internal , 10.20.0.0/16, 192.168.7.7, ::1 ")
    assert check_url("https://fulfil.partner.internal/f", allowed).host == "fulfil.partner.internal"
    assert check_url("https://10.20.3.4/f", allowed).port == 443
    assert check_url("https://192.168.7.7/f", allowed).port == 443
    assert check_url("https://[::1]/f", allowed).port == 443
    with pytest.raises(RefusedUrlError, match=re.escape("10.21.0.1 is a private address")):
        check_url("https://10.21.0.1/f", allowed)
    with pytest.raises(RefusedUrlError, match="is not https"):
        check_url("http://10.20.3.4/f", allowed)


def test_a_name_is_refused_if_any_of_its_addresses_is_internal():
    target = check_url("https://partner.example/f", PRODUCTION)
    public, private = ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("10.0.0.9")
    check_addresses(target, [public], PRODUCTION)
    with pytest.raises(RefusedUrlError, match=re.escape("'partner.example' resolves to 10.0.0.9, a private address")):
        check_addresses(target, [public, private], PRODUCTION)
    check_addresses(target, [public, private], UrlPolicy.parse(True, "10.0.0.0/24"))
    check_addresses(target, [private], UrlPolicy.parse(True, "partner.example"))


def test_a_bad_allow_list_entry_is_refused_at_start():
    with pytest.raises(ValueError, match=re.escape("'10.0.0.0/33' is not a CIDR")):
        UrlPolicy.parse(True, "partner.example, 10.0.0.0/33")


def test_an_offer_with_a_refused_url_is_unusable_for_the_dead_letter_topic():
    with pytest.raises(UnusableOfferError, match=r"payload\.fulfilment_url: 'http://127.0.0.1/f' is not https"):
        check_callable("http://127.0.0.1/f", PRODUCTION)
    check_callable("http://127.0.0.1/f", PERMISSIVE)
