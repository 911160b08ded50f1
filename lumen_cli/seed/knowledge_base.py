"""The demo knowledge base (data/kb/bank: a fictional bank's support articles, tagged with
Banking77 intents) loaded into MongoDB, as ``lumen kb load`` loads any folder of articles.

Articles whose content and encoder are unchanged are not embedded again, so seeding twice
costs one read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lumen_cli.platform.paths import REPO_ROOT

if TYPE_CHECKING:
    from lumen_cli.seed.replay import PhaseResult

DEMO_KNOWLEDGE_BASE = REPO_ROOT / "data" / "kb" / "bank"


@dataclass(frozen=True)
class KbLoad:
    articles: int
    embedded: int
    unchanged: int
    removed: int
    passages: int
    encoder: str
    collection: str


def load_knowledge_base(path: Path, replace: bool = False, registry: Path | None = None) -> KbLoad:
    """Read, split, embed (the registry's newest text encoder, onnxruntime) and upsert the
    articles under ``path``. Raises ``KnowledgeBaseError`` for a bad file, ``PyMongoError``
    when MongoDB cannot be reached, ``RegistryError`` when there is no encoder."""
    from services.inference.kb_embedder import registry_encoder
    from services.inference.knowledge_base import KnowledgeBaseError, load_articles, read_articles
    from services.inference.settings import AssistSettings
    from shared.model_registry import repository_root
    from shared.mongo import database, mongo_client
    from shared.settings import MongoSettings

    articles = read_articles(path)
    if not articles:
        raise KnowledgeBaseError(f"{path}: no articles")
    embed, encoder = registry_encoder(repository_root(registry))
    settings = MongoSettings()
    collection = AssistSettings().collection
    client = mongo_client(settings)
    try:
        report = load_articles(
            database(client, settings)[collection], articles, embed, encoder, replace
        )
    finally:
        client.close()
    return KbLoad(
        len(articles),
        len(report.embedded),
        len(report.unchanged),
        len(report.removed),
        report.passages,
        f"{encoder.name}:{encoder.version}",
        collection,
    )


def seed_demo_knowledge_base() -> KbLoad:
    return load_knowledge_base(DEMO_KNOWLEDGE_BASE)


def seed_phase() -> PhaseResult:
    """``lumen seed``'s knowledge-base part, reported like the replayed parts (total:
    articles, earlier: unchanged ones, sent and accepted: embedded ones). A failure is
    reported in ``rejections`` rather than stopping the other parts."""
    import time

    from pymongo.errors import PyMongoError

    from lumen_cli.seed.replay import PhaseResult
    from services.inference.knowledge_base import KnowledgeBaseError
    from shared.model_registry import RegistryError

    started = time.perf_counter()
    try:
        done = seed_demo_knowledge_base()
    except (KnowledgeBaseError, RegistryError, PyMongoError) as exc:
        return PhaseResult(
            "kb", 0, rejections=[{"messageId": "knowledge-base", "message": str(exc)[:300]}]
        )
    return PhaseResult(
        "kb",
        done.articles,
        skipped=done.unchanged,
        sent=done.embedded,
        accepted=done.embedded,
        seconds=time.perf_counter() - started,
    )
