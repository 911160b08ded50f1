"""``lumen kb load PATH`` and ``lumen assist TEXT``: the support assistant's knowledge base
and its suggested replies."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from lumen_cli.output import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    add_json_flag,
    client,
    guarded,
    print_json,
)
from lumen_client import to_dict


def add_parsers(sub: Any) -> None:
    kb = sub.add_parser("kb", help="the support assistant's knowledge base")
    kb_sub = kb.add_subparsers(dest="kb_command", required=True, metavar="ACTION")
    load = kb_sub.add_parser(
        "load",
        help="load articles (Markdown folder, CSV or JSON) into MongoDB",
        description=(
            "Reads the articles under PATH (a folder of Markdown files with front matter "
            "id/title/intents, or a CSV or JSON file of title, body, intents), splits them "
            "into passages, embeds them with the registry's text encoder and stores them in "
            "MongoDB, where the inference server picks them up within "
            "LUMEN_ASSIST_REFRESH_SECONDS. Unchanged articles are not embedded again."
        ),
    )
    load.add_argument("path", type=Path, help="e.g. data/kb/bank")
    load.add_argument(
        "--replace", action="store_true", help="also delete stored articles not under PATH"
    )
    load.add_argument(
        "--registry", type=Path, help="model registry (default $LUMEN_MODEL_REPOSITORY)"
    )
    add_json_flag(load)
    load.set_defaults(func=cmd_kb_load)

    assist = sub.add_parser(
        "assist", help="a suggested reply from the knowledge base for a support message"
    )
    assist.add_argument("text", help="the customer's message")
    assist.add_argument(
        "--conversation", default="", help="conversation id: its earlier messages are context"
    )
    assist.add_argument(
        "--context",
        action="append",
        default=[],
        metavar="TEXT",
        help="an earlier message of the conversation (repeatable, oldest first)",
    )
    assist.add_argument("--target", help="inference host:port (default $LUMEN_INFERENCE_TARGET)")
    add_json_flag(assist)
    assist.set_defaults(func=guarded(cmd_assist))


def cmd_kb_load(args: argparse.Namespace) -> int:
    from pymongo.errors import PyMongoError

    from lumen_cli.seed.knowledge_base import load_knowledge_base
    from services.inference.knowledge_base import KnowledgeBaseError
    from shared.model_registry import RegistryError

    try:
        done = load_knowledge_base(args.path, args.replace, args.registry)
    except (KnowledgeBaseError, RegistryError) as exc:
        print(f"lumen kb load: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except PyMongoError as exc:
        print(
            f"lumen kb load: MongoDB is not reachable ({type(exc).__name__}); is the platform "
            "up? `lumen status`",
            file=sys.stderr,
        )
        return EXIT_UNREACHABLE
    if args.json:
        print_json(dataclasses.asdict(done))
        return EXIT_OK
    print(
        f"{done.articles} articles ({done.passages} passages) in {done.collection}: "
        f"{done.embedded} embedded with {done.encoder}, {done.unchanged} unchanged"
        + (f", {done.removed} removed" if done.removed else "")
    )
    return EXIT_OK


def cmd_assist(args: argparse.Namespace) -> int:
    with client(args) as lumen:
        answer = lumen.suggest_reply(
            args.text, conversation_id=args.conversation, context=args.context
        )
    if args.json:
        print_json(to_dict(answer))
        return EXIT_OK
    scope = "  (out of scope)" if answer.out_of_scope else ""
    print(f"intent: {answer.intent}  confidence {answer.intent_confidence:.2f}{scope}")
    if answer.handoff:
        print(f"hand-off to a human ({answer.handoff_reason}, confidence {answer.confidence:.2f})")
    else:
        print(
            f"suggested reply (confidence {answer.confidence:.2f}, from {answer.article_title!r}):"
        )
    print(f"  {answer.reply}")
    if answer.passages:
        print("passages:")
        for passage in answer.passages:
            print(f"  {passage.score:5.2f}  {passage.title} [{passage.article_id}]")
    if answer.context_messages:
        print(f"(read with {answer.context_messages} earlier message(s) of the conversation)")
    print(f"({answer.model.name} v{answer.model.version}, {answer.encoder or 'no encoder'})")
    return EXIT_OK
