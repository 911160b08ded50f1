"""``lumen recommend | classify | search | profile | trending``: ask the running platform."""

from __future__ import annotations

import argparse
from typing import Any

from lumen_cli.output import EXIT_OK, EXIT_UNREACHABLE, add_json_flag, client, guarded, print_json
from lumen_client import to_dict


def add_parsers(sub: Any) -> None:
    rec = sub.add_parser("recommend", help="recommendations for a user (e.g. a MovieLens user id)")
    rec.add_argument("user", help="user id (MovieLens users after `lumen seed`: 1..943)")
    rec.add_argument("-k", type=int, default=10, help="number of items (default 10)")
    rec.add_argument("--anonymous", action="store_true", help="USER is an anonymousId")
    rec.add_argument("--include-seen", action="store_true", help="keep items already rated")
    rec.add_argument("--category", action="append", default=[], help="only this category")
    _common(rec, cmd_recommend)

    cls = sub.add_parser("classify", help="the intent of a customer-support message")
    cls.add_argument("text", nargs="+", help="the message (one argument per message)")
    cls.add_argument("--top", type=int, default=3, help="alternatives to show (default 3)")
    _common(cls, cmd_classify)

    search = sub.add_parser("search", help="semantic search over the item catalogue")
    search.add_argument("query", help="free text, e.g. 'space adventure with robots'")
    search.add_argument("-k", type=int, default=10, help="number of hits (default 10)")
    search.add_argument("--category", action="append", default=[], help="only this category")
    _common(search, cmd_search)

    profile = sub.add_parser("profile", help="the real-time profile of a user")
    profile.add_argument("user", help="user id")
    profile.add_argument("--anonymous", action="store_true", help="USER is an anonymousId")
    _common(profile, cmd_profile)

    trending = sub.add_parser(
        "trending", help="what is trending now (items, categories or acquisition channels)"
    )
    trending.add_argument("-n", type=int, default=10, help="rows (default 10)")
    what = trending.add_mutually_exclusive_group()
    what.add_argument("--categories", action="store_true", help="categories, not items")
    what.add_argument(
        "--channels", action="store_true", help="acquisition channels (users' last touch)"
    )
    trending.add_argument("--window", choices=["1m", "1h"], default="1h", help="window size")
    trending.add_argument("--by", choices=["views", "purchases"], default="views")
    add_json_flag(trending)
    trending.set_defaults(func=cmd_trending)


def _common(parser: argparse.ArgumentParser, func: Any) -> None:
    parser.add_argument("--target", help="inference host:port (default $LUMEN_INFERENCE_TARGET)")
    add_json_flag(parser)
    parser.set_defaults(func=guarded(func))


def _model(model: Any) -> str:
    return f"{model.name} v{model.version}" if model.name else "no model"


def cmd_recommend(args: argparse.Namespace) -> int:
    key = {"anonymous_id": args.user} if args.anonymous else {"user_id": args.user}
    with client(args) as lumen:
        result = lumen.recommend(
            **key, k=args.k, exclude_seen=not args.include_seen, categories=args.category
        )
    if args.json:
        print_json(to_dict(result))
        return EXIT_OK
    print(f"Recommendations for {args.user} ({result.source}, {_model(result.model)})")
    for rank, item in enumerate(result.items, 1):
        genres = ", ".join(item.categories)
        print(f"{rank:>3}. {item.title or item.item_id:<45} {item.score:7.3f}  {genres}")
        if item.reason:
            print(f"     {item.reason}  [{item.reason_kind}]")
    if not result.items:
        print("  (nothing to recommend yet: seed some events with `lumen seed`)")
    return EXIT_OK


def cmd_classify(args: argparse.Namespace) -> int:
    with client(args) as lumen:
        if len(args.text) == 1:
            one = lumen.classify_intent(args.text[0], top_k=args.top)
            predictions, model = [one.prediction], one.model
        else:
            many = lumen.classify_intents(args.text, top_k=args.top)
            predictions, model = many.predictions, many.model
    if args.json:
        rows = [{"text": t, **to_dict(p)} for t, p in zip(args.text, predictions, strict=True)]
        print_json({"predictions": rows, "model": to_dict(model)})
        return EXIT_OK
    for text, p in zip(args.text, predictions, strict=True):
        scope = "  (out of scope)" if p.out_of_scope else ""
        print(f"{text!r}\n  intent: {p.intent}  confidence {p.confidence:.2f}{scope}")
        others = [f"{a.intent} {a.confidence:.2f}" for a in p.alternatives if a.intent != p.intent]
        if others:
            print(f"  alternatives: {', '.join(others)}")
    print(f"({_model(model)})")
    return EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    with client(args) as lumen:
        result = lumen.search_items(args.query, k=args.k, categories=args.category)
    if args.json:
        print_json(to_dict(result))
        return EXIT_OK
    print(f"Results for {args.query!r} ({_model(result.model)})")
    for rank, hit in enumerate(result.hits, 1):
        genres = ", ".join(hit.categories)
        print(f"{rank:>3}. {hit.title or hit.item_id:<45} {hit.score:7.3f}  {genres}")
    if not result.hits:
        print("  (no hits)")
    return EXIT_OK


def cmd_profile(args: argparse.Namespace) -> int:
    key = {"anonymous_id": args.user} if args.anonymous else {"user_id": args.user}
    with client(args) as lumen:
        profile = lumen.get_profile(**key)
    if args.json:
        print_json(to_dict(profile))
        return EXIT_OK
    print(f"Profile {profile.id}  (version {profile.version}, updated {profile.updated_at})")
    print(f"  first seen {profile.first_seen}, last seen {profile.last_seen}")
    print(f"  sessions {profile.sessions}, active days {profile.active_days}")
    events = ", ".join(f"{k} {v}" for k, v in sorted(profile.event_counts_by_name.items()))
    print(f"  events: {events or '-'}")
    print(f"  purchases {profile.purchases}, revenue {profile.revenue:.2f}")
    if profile.rfm:
        r = profile.rfm
        print(f"  RFM {r.recency}/{r.frequency}/{r.monetary}: {r.segment}")
    else:
        print("  RFM -: scored from the first purchase")
    top = sorted(profile.category_affinity.items(), key=lambda kv: -kv[1])[:5]
    print("  top categories: " + (", ".join(f"{c} {a:.2f}" for c, a in top) or "-"))
    print(f"  recent items: {', '.join(profile.recent_items[-10:]) or '-'}")
    for name, touch in (("first touch", profile.first_touch), ("last touch", profile.last_touch)):
        if touch is not None:
            campaign = f" campaign {touch.campaign}" if touch.campaign else ""
            print(f"  {name}: {touch.channel} ({touch.source or '-'}){campaign} at {touch.at}")
    if profile.traits:
        print(f"  traits: {profile.traits}")
    return EXIT_OK


def cmd_trending(args: argparse.Namespace) -> int:
    import sys

    from pymongo.errors import PyMongoError

    from shared.mongo import ITEMS, database, mongo_client
    from shared.settings import MongoSettings
    from shared.trends import CATEGORY, CHANNEL, ITEM, top_trending

    settings = MongoSettings()
    kind = CATEGORY if args.categories else CHANNEL if args.channels else ITEM
    mongo = mongo_client(settings)
    try:
        db = database(mongo, settings)
        rows = top_trending(db, kind=kind, window=args.window, by=args.by, limit=args.n)
        titles: dict[str, str] = {}
        if kind == ITEM and rows:
            found = db[ITEMS].find({"_id": {"$in": [r.key for r in rows]}}, {"title": 1})
            titles = {str(d["_id"]): str(d.get("title") or "") for d in found}
    except PyMongoError as exc:
        print(
            f"lumen trending: MongoDB at {settings.uri} is not reachable ({type(exc).__name__}); "
            "is the platform up? `lumen status`",
            file=sys.stderr,
        )
        return EXIT_UNREACHABLE
    finally:
        mongo.close()
    out = [
        {
            "rank": i,
            "key": r.key,
            "title": titles.get(r.key, ""),
            "views": r.views,
            "purchases": r.purchases,
        }
        for i, r in enumerate(rows, 1)
    ]
    if args.json:
        print_json({"kind": kind, "window": args.window, "by": args.by, "trending": out})
        return EXIT_OK
    what = {CATEGORY: "categories", CHANNEL: "channels"}.get(kind, "items")
    print(f"Trending {what} (this and the previous {args.window} window, by {args.by})")
    for row in out:
        label = row["title"] or row["key"]
        print(
            f"{row['rank']:>3}. {label:<45} views {row['views']:>6}  purchases {row['purchases']:>5}"
        )
    if not out:
        print("  (nothing yet: events from the last two windows count; try `lumen seed`)")
    return EXIT_OK
