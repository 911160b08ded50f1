"""Each rule of the acquisition channel grouping, from Segment's context fields."""

from __future__ import annotations

from typing import Any

import pytest

from shared import attribution
from shared.attribution import CHANNELS, Touch, host_of, touch_of

PAGE = "https://shop.example/products/42"


def with_context(**context: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Product Viewed", "context": context}


def campaign(source: str = "", medium: str = "", name: str = "") -> dict[str, Any]:
    return with_context(campaign={"source": source, "medium": medium, "name": name})


def channel(event: dict[str, Any]) -> str | None:
    touch = touch_of(event)
    return touch.channel if touch else None


@pytest.mark.parametrize(
    ("source", "medium", "expected"),
    [
        ("google", "cpc", attribution.PAID_SEARCH),
        ("bing", "ppc", attribution.PAID_SEARCH),
        ("google", "paidsearch", attribution.PAID_SEARCH),
        ("facebook", "cpc", attribution.PAID_SOCIAL),
        ("newsletter-partner", "paid_social", attribution.PAID_SOCIAL),
        ("l.instagram.com", "paid", attribution.PAID_SOCIAL),
        ("adnetwork", "display", attribution.DISPLAY),
        ("adnetwork", "banner", attribution.DISPLAY),
        ("adnetwork", "cpm", attribution.DISPLAY),  # display wins over "contains cp"
        ("podcast", "cpa", attribution.PAID_OTHER),
        ("podcast", "retargeting", attribution.PAID_OTHER),
        ("google", "organic", attribution.ORGANIC_SEARCH),
        ("duckduckgo", "", attribution.ORGANIC_SEARCH),
        ("partner", "organic", attribution.ORGANIC_SEARCH),
        ("twitter", "social", attribution.SOCIAL),
        ("partner", "social-network", attribution.SOCIAL),
        ("linkedin", "", attribution.SOCIAL),
        ("newsletter", "email", attribution.EMAIL),
        ("email", "", attribution.EMAIL),
        ("crm", "e-mail", attribution.EMAIL),
        ("partner", "affiliate", attribution.AFFILIATE),
        ("partner", "referral", attribution.REFERRAL),
        ("partner", "link", attribution.REFERRAL),
        ("partner", "podcast", attribution.OTHER),
        ("Google", "CPC", attribution.PAID_SEARCH),  # case does not matter
    ],
)
def test_utm_source_and_medium_choose_the_channel(source: str, medium: str, expected: str) -> None:
    assert channel(campaign(source, medium, "spring")) == expected


def test_the_touch_keeps_the_campaign_fields_as_sent() -> None:
    touch = touch_of(campaign("Google", "CPC", "Spring Sale"))
    assert touch == Touch(
        channel=attribution.PAID_SEARCH, source="Google", medium="CPC", campaign="Spring Sale"
    )


def test_utm_parameters_of_the_page_url_count_without_context_campaign() -> None:
    url = f"{PAGE}?utm_source=newsletter&utm_medium=email&utm_campaign=may"
    touch = touch_of(with_context(page={"url": url}))
    assert touch == Touch(
        channel=attribution.EMAIL, source="newsletter", medium="email", campaign="may"
    )


def test_context_campaign_wins_over_the_page_url() -> None:
    url = f"{PAGE}?utm_source=newsletter&utm_medium=email"
    event = with_context(campaign={"source": "google", "medium": "cpc"}, page={"url": url})
    assert channel(event) == attribution.PAID_SEARCH


@pytest.mark.parametrize(
    ("parameter", "expected"),
    [
        ("gclid", attribution.PAID_SEARCH),
        ("msclkid", attribution.PAID_SEARCH),
        ("wbraid", attribution.PAID_SEARCH),
        ("dclid", attribution.DISPLAY),
    ],
)
def test_ad_click_ids_on_the_landing_page(parameter: str, expected: str) -> None:
    assert channel(with_context(page={"url": f"{PAGE}?{parameter}=abc"})) == expected


@pytest.mark.parametrize(
    ("referrer", "expected"),
    [
        ("https://www.google.com/search?q=lamp", attribution.ORGANIC_SEARCH),
        ("https://www.google.co.uk/", attribution.ORGANIC_SEARCH),
        ("https://search.yahoo.co.jp/", attribution.ORGANIC_SEARCH),
        ("https://l.facebook.com/l.php", attribution.SOCIAL),
        ("https://t.co/abc", attribution.SOCIAL),
        ("https://www.reddit.com/r/lamps", attribution.SOCIAL),
        ("https://mail.google.com/mail/u/0", attribution.EMAIL),
        ("https://blog.example.org/review", attribution.REFERRAL),
    ],
)
def test_an_external_referrer_without_utm(referrer: str, expected: str) -> None:
    by_context = with_context(referrer={"type": "link", "url": referrer}, page={"url": PAGE})
    by_page = with_context(page={"url": PAGE, "referrer": referrer})
    assert channel(by_context) == expected
    assert channel(by_page) == expected
    touch = touch_of(by_page)
    assert touch is not None and touch.referrer == host_of(referrer)


def test_a_page_without_referrer_or_campaign_is_direct() -> None:
    assert touch_of(with_context(page={"url": PAGE})) == Touch(channel=attribution.DIRECT)


def test_a_page_call_reads_its_properties_as_the_page() -> None:
    event = {"type": "page", "properties": {"url": PAGE, "referrer": "https://bing.com/"}}
    assert channel(event) == attribution.ORGANIC_SEARCH


def test_navigation_within_the_site_carries_no_touch() -> None:
    event = with_context(page={"url": PAGE, "referrer": "https://shop.example/cart"})
    assert touch_of(event) is None


@pytest.mark.parametrize(
    "event",
    [
        {"type": "track", "event": "Order Completed"},
        with_context(),
        with_context(campaign="google", referrer=7, page=["x"]),
        with_context(campaign={"source": 3, "medium": None}),
        with_context(page={"url": "x" * 5000}),
    ],
)
def test_events_without_usable_attribution_context_carry_no_touch(event: dict[str, Any]) -> None:
    assert touch_of(event) is None


def test_long_campaign_values_are_cut() -> None:
    touch = touch_of(campaign("s" * 1000, "email", "n" * 1000))
    assert touch is not None and len(touch.source) == 128 and len(touch.campaign) == 128


def test_every_channel_the_rules_return_is_in_the_fixed_set() -> None:
    seen = {
        attribution.classify(source, medium, host)
        for source in ("", "google", "facebook", "email", "partner")
        for medium in ("", "cpc", "display", "organic", "social", "email", "affiliate", "x")
        for host in ("", "bing.com", "mail.google.com", "blog.example.org")
    }
    assert seen <= set(CHANNELS)
    assert len(CHANNELS) == len(set(CHANNELS))
