"""Acquisition channel of an event, from its ``context.campaign``, ``context.referrer`` and
``context.page``: the rules of a default channel grouping (Google Analytics 4's, simplified).

Pure: no I/O. The profile updater stores each profile's first and last touch with it, the
exporter counts events, orders and revenue by it; both read the same fixed set of channels,
so a label never takes more than ``len(CHANNELS)`` values.

Rules, first match wins (``source``/``medium`` are the UTM values, lower-cased; without UTM the
referrer's host is the source):

1. ``gclid``/``gbraid``/``wbraid``/``msclkid`` in the page URL, or a paid medium (``cpc``,
   ``ppc``, ``paid*``, ``retargeting``, any medium containing ``cp``) from a search engine:
   ``paid_search``.
2. A paid medium from a social network, or a ``paid_social``-like medium: ``paid_social``.
3. ``display``, ``banner``, ``cpm``, ``expandable``, ``interstitial`` media (or ``dclid``):
   ``display``.
4. Any other paid medium: ``paid_other``.
5. ``organic`` medium, or a search engine as source: ``organic_search``.
6. A social medium (``social``, ``social-network``, ``sm``, ...) or a social network as
   source: ``social``.
7. ``email`` (and its spellings) as source or medium, or a webmail host as referrer: ``email``.
8. ``affiliate`` medium: ``affiliate``.
9. ``referral``, ``link`` or ``app`` medium, or an external referrer: ``referral``.
10. Campaign values matching nothing above: ``other``.
11. A page seen with none of the above (typed URL, bookmark): ``direct``.

A referrer on the page's own host is navigation within the site and carries no attribution;
neither does an event without campaign, referrer or page (a backend's server-side call):
``touch_of`` returns ``None`` for those.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

DIRECT = "direct"
ORGANIC_SEARCH = "organic_search"
PAID_SEARCH = "paid_search"
SOCIAL = "social"
PAID_SOCIAL = "paid_social"
EMAIL = "email"
AFFILIATE = "affiliate"
DISPLAY = "display"
PAID_OTHER = "paid_other"
REFERRAL = "referral"
OTHER = "other"
# Every channel, in the order dashboards list them: the only values a ``channel`` label takes.
CHANNELS = (
    DIRECT,
    ORGANIC_SEARCH,
    PAID_SEARCH,
    SOCIAL,
    PAID_SOCIAL,
    EMAIL,
    AFFILIATE,
    DISPLAY,
    PAID_OTHER,
    REFERRAL,
    OTHER,
)

# Host names (a label of the registered domain) of well-known search engines, social networks
# and webmail; matched on any label of the host, so google.co.uk and m.facebook.com count.
SEARCH_HOSTS = frozenset(
    {"google", "bing", "yahoo", "duckduckgo", "baidu", "yandex", "ecosia", "naver", "seznam"}
)
SOCIAL_HOSTS = frozenset(
    {
        "facebook",
        "fb",
        "instagram",
        "twitter",
        "x",
        "t",  # t.co
        "linkedin",
        "lnkd",
        "pinterest",
        "reddit",
        "tiktok",
        "youtube",
        "snapchat",
        "threads",
        "tumblr",
        "vk",
        "quora",
        "mastodon",
        "whatsapp",
    }
)
# Webmail hosts: mail.google.com would otherwise read as a search engine.
EMAIL_HOSTS = frozenset(
    {"mail.google.com", "outlook.live.com", "outlook.office.com", "mail.yahoo.com"}
)

_PAID = re.compile(r"^(.*cp.*|ppc|retargeting|paid.*)$")
_PAID_SOCIAL_MEDIA = frozenset({"paid_social", "paidsocial", "paid-social", "social_paid"})
_DISPLAY = frozenset({"display", "banner", "expandable", "interstitial", "cpm"})
_SOCIAL_MEDIA = frozenset(
    {"social", "social-network", "social-media", "sm", "social network", "social media"}
)
_EMAIL = frozenset({"email", "e-mail", "e_mail", "e mail", "newsletter"})
_REFERRAL_MEDIA = frozenset({"referral", "link", "app"})
_SEARCH_CLICK_IDS = ("gclid", "gbraid", "wbraid", "msclkid")
_DISPLAY_CLICK_IDS = ("dclid",)
_MAX_FIELD = 128  # stored campaign values are cut to this length
_MAX_URL = 2048  # longer URLs are not read


@dataclass(frozen=True)
class Touch:
    """One attribution touch: the channel and what it was read from."""

    channel: str
    source: str = ""  # utm_source, else the referrer's host
    medium: str = ""
    campaign: str = ""  # utm_campaign (Segment's ``context.campaign.name``)
    referrer: str = ""  # host of the external referrer, if any


def _text(value: Any) -> str:
    return value.strip()[:_MAX_FIELD] if isinstance(value, str) else ""


def _url(value: Any) -> str:
    return value.strip() if isinstance(value, str) and len(value) <= _MAX_URL else ""


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def host_of(url: str) -> str:
    """The lower-cased host of a URL ('' if it has none)."""
    try:
        host = urlsplit(url if "//" in url else f"//{url}").hostname or ""
    except ValueError:
        return ""
    return host.removeprefix("www.")


def _labels(host: str) -> set[str]:
    return set(host.split("."))


def is_search(host: str) -> bool:
    return bool(host) and host not in EMAIL_HOSTS and bool(_labels(host) & SEARCH_HOSTS)


def is_social(host: str) -> bool:
    return bool(host) and bool(_labels(host) & SOCIAL_HOSTS)


def _source_is(source: str, hosts: frozenset[str]) -> bool:
    """A UTM source names the site as a word ('google') or a host ('l.facebook.com')."""
    return bool(source) and (source in hosts or bool(_labels(source) & hosts))


def _query(url: str) -> dict[str, list[str]]:
    try:
        return parse_qs(urlsplit(url).query)
    except ValueError:
        return {}


def classify(source: str, medium: str, referrer_host: str = "", query: Any = None) -> str:
    """The channel of a touch: UTM ``source``/``medium`` (lower-case), the external referrer's
    host and the landing page's query parameters (click ids)."""
    query = query or {}
    source = source or referrer_host
    search_source = _source_is(source, SEARCH_HOSTS) and source not in EMAIL_HOSTS
    social_source = _source_is(source, SOCIAL_HOSTS)
    paid = bool(_PAID.match(medium))
    if any(k in query for k in _SEARCH_CLICK_IDS) or (paid and search_source):
        return PAID_SEARCH
    if (paid and social_source) or medium in _PAID_SOCIAL_MEDIA:
        return PAID_SOCIAL
    if medium in _DISPLAY or any(k in query for k in _DISPLAY_CLICK_IDS):
        return DISPLAY
    if paid:
        return PAID_OTHER
    if medium == "organic" or search_source:
        return ORGANIC_SEARCH
    if medium in _SOCIAL_MEDIA or social_source:
        return SOCIAL
    if medium in _EMAIL or source in _EMAIL or referrer_host in EMAIL_HOSTS:
        return EMAIL
    if medium == "affiliate":
        return AFFILIATE
    if medium in _REFERRAL_MEDIA or referrer_host:
        return REFERRAL
    if source or medium:
        return OTHER
    return DIRECT


def _campaign(context: Mapping[str, Any], page_url: str) -> tuple[str, str, str]:
    """(source, medium, name) from ``context.campaign``, else from the page URL's utm_*."""
    campaign = _object(context.get("campaign"))
    source = _text(campaign.get("source"))
    medium = _text(campaign.get("medium"))
    name = _text(campaign.get("name"))
    if not (source or medium or name) and page_url:
        query = _query(page_url)
        source, medium, name = (
            _text((query.get(f"utm_{k}") or [""])[0]) for k in ("source", "medium", "campaign")
        )
    return source, medium, name


def touch_of(event: Mapping[str, Any]) -> Touch | None:
    """The attribution touch an event carries, or ``None`` if it carries no attribution
    context (no campaign, no external referrer, no page)."""
    context = _object(event.get("context"))
    is_page_call = event.get("type") == "page"
    if not (is_page_call or "campaign" in context or "referrer" in context or "page" in context):
        return None  # most events (a backend's calls): nothing to read
    page = _object(context.get("page"))
    if is_page_call and not page:
        page = _object(event.get("properties"))  # Segment copies page fields into properties
    page_url = _url(page.get("url"))
    source, medium, name = _campaign(context, page_url)
    referrer = _object(context.get("referrer"))
    referrer_url = _url(referrer.get("url") or referrer.get("link")) or _url(page.get("referrer"))
    referrer_host = host_of(referrer_url)
    if referrer_host and referrer_host == host_of(page_url):
        referrer_host = ""  # within the site
    query = _query(page_url) if page_url else {}
    if not (source or medium or name or referrer_host or page_url):
        return None
    campaign_or_click = bool(source or medium or name or referrer_host) or any(
        k in query for k in (*_SEARCH_CLICK_IDS, *_DISPLAY_CLICK_IDS)
    )
    if referrer_url and not campaign_or_click:
        return None  # an internal referrer: a step within the visit, not a new touch
    channel = classify(source.lower(), medium.lower(), referrer_host, query)
    return Touch(
        channel=channel,
        source=source or referrer_host,
        medium=medium,
        campaign=name,
        referrer=referrer_host,
    )
