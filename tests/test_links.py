"""Link header parsing: Sentry's exact format, and GlitchTip's malformed one."""

import pytest

from sentry_mirror.errors import ConfigError
from sentry_mirror.fetching.client import next_cursor, parse_link_header
from sentry_mirror.fetching.urls import normalise_base_url

SENTRY_MIDDLE = (
    '<https://sentry.io/api/0/organizations/acme/issues/123456/events/?&cursor=0:0:1>; rel="previous"; '
    'results="false"; cursor="0:0:1", '
    '<https://sentry.io/api/0/organizations/acme/issues/123456/events/?&cursor=0:100:0>; rel="next"; '
    'results="true"; cursor="0:100:0"'
)
SENTRY_LAST = (
    '<https://sentry.io/api/0/x/?&cursor=0:100:1>; rel="previous"; results="true"; cursor="0:100:1", '
    '<https://sentry.io/api/0/x/?&cursor=0:200:0>; rel="next"; results="false"; cursor="0:200:0"'
)
GLITCHTIP = (
    "{'<https://gt.example/api/0/issues/1/events/>; rel=\"previous\"; results=\"false\", "
    "<https://gt.example/api/0/issues/1/events/?cursor=cD0yMDI0>; rel=\"next\"; results=\"true\"; cursor=\"cD0yMDI0\"'}"
)
GLITCHTIP_LAST = (
    "{'<https://gt.example/api/0/issues/1/events/?cursor=cj0x>; rel=\"previous\"; results=\"true\"; cursor=\"cj0x\", "
    "<https://gt.example/api/0/issues/1/events/>; rel=\"next\"; results=\"false\"'}"
)


def test_sentry_middle_page_gives_next_cursor():
    links = parse_link_header(SENTRY_MIDDLE)
    assert links["previous"].results is False
    assert links["previous"].cursor == "0:0:1"
    assert links["next"].results is True
    assert next_cursor(links) == "0:100:0"


def test_sentry_last_page_has_next_link_but_no_results():
    links = parse_link_header(SENTRY_LAST)
    assert "next" in links  # Sentry always sends it...
    assert next_cursor(links) is None  # ...and results="false" is what ends the walk


def test_glitchtip_wrapped_header():
    assert next_cursor(parse_link_header(GLITCHTIP)) == "cD0yMDI0"
    assert next_cursor(parse_link_header(GLITCHTIP_LAST)) is None


def test_cursor_taken_from_url_when_attribute_missing():
    header = '<https://h/api/0/x/?per_page=10&cursor=abc%3D>; rel="next"; results="true"'
    assert next_cursor(parse_link_header(header)) == "abc="


def test_missing_or_empty_header():
    assert next_cursor(parse_link_header(None)) is None
    assert next_cursor(parse_link_header("")) is None
    assert next_cursor(parse_link_header("garbage, <>; nonsense")) is None


@pytest.mark.parametrize("given, expected", [
    ("https://sentry.io", "https://sentry.io/api/0"),
    ("https://sentry.io/", "https://sentry.io/api/0"),
    ("https://de.sentry.io/api/0/", "https://de.sentry.io/api/0"),
    ("http://sentry.internal:9000/sentry", "http://sentry.internal:9000/sentry/api/0"),
])
def test_base_url_normalised(given, expected):
    assert normalise_base_url(given) == expected


@pytest.mark.parametrize("bad", ["sentry.io", "ftp://x", "", "https://", "http://127.0.0.1:0"])
def test_bad_base_url_is_a_config_error(bad):
    with pytest.raises(ConfigError):
        normalise_base_url(bad)
