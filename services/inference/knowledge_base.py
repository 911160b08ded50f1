"""The support knowledge base: articles read from files, split into passages, embedded with
the text encoder and stored in MongoDB (``kb_articles``); the inference server keeps every
passage's vector in memory and scores queries against them.

Article files (``read_articles``): a folder of Markdown files, one article each, with front
matter (``id``, ``title``, ``intents``; the title may be the first ``# heading`` instead),
or a CSV or JSON file of rows with ``title``, ``body``, ``intents`` (and optionally ``id``).
``intents`` are intent names of the classifier (Banking77's, e.g. ``card_arrival``): they
tie an article to the messages it answers.

Document of one article::

    {_id, title, body, intents, source, contentSha,
     passages: [{text, embedding (float32 bytes)}], encoder: {name, version, sha256}, updatedAt}

``contentSha`` covers title, body and intents; ``encoder.sha256`` is the sha256 of the
encoder's graph (its config.json): a loader skips articles whose content and encoder are
unchanged, and the server re-embeds (and writes back) those stored with another encoder.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pymongo.collection import Collection

PASSAGE_MAX_WORDS = 80  # MiniLM reads 256 tokens; a passage is a paragraph or two
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")

Embed = Callable[[list[str]], np.ndarray]


class KnowledgeBaseError(ValueError):
    """An article file or row that cannot be read: says which and why."""


@dataclass(frozen=True)
class Article:
    article_id: str
    title: str
    body: str
    intents: tuple[str, ...] = ()
    source: str = ""

    @property
    def content_sha(self) -> str:
        digest = hashlib.sha256()
        for part in (self.title, self.body, *sorted(self.intents)):
            digest.update(part.encode() + b"\0")
        return digest.hexdigest()


@dataclass(frozen=True)
class EncoderId:
    name: str
    version: int
    sha256: str

    def as_doc(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "sha256": self.sha256}


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:80] or "article"


def _intents(value: Any, where: str) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        items = value.strip().strip("[]").replace(";", ",").split(",")
    elif isinstance(value, list):
        items = [str(v) for v in value]
    else:
        raise KnowledgeBaseError(f"{where}: intents must be a list or a comma-separated string")
    return tuple(dict.fromkeys(i.strip().strip("'\"") for i in items if i.strip()))


def _article(row: dict[str, Any], where: str) -> Article:
    title = str(row.get("title") or "").strip()
    body = str(row.get("body") or "").strip()
    if not title:
        raise KnowledgeBaseError(f"{where}: no title")
    if not body:
        raise KnowledgeBaseError(f"{where}: no body")
    article_id = str(row.get("id") or slug(title)).strip()
    if not ID_PATTERN.match(article_id):
        raise KnowledgeBaseError(f"{where}: id {article_id!r} is not [A-Za-z0-9_.-], 1..128")
    return Article(article_id, title, body, _intents(row.get("intents"), where), where)


def parse_markdown(text: str, where: str, default_id: str) -> Article:
    """Front matter between ``---`` lines (``key: value``), then the body; without a
    ``title`` key the first ``# heading`` is the title."""
    meta: dict[str, Any] = {"id": default_id}
    lines = text.strip().splitlines()
    if lines and lines[0].strip() == "---":
        try:
            end = next(i for i, line in enumerate(lines[1:], 1) if line.strip() == "---")
        except StopIteration:
            raise KnowledgeBaseError(f"{where}: front matter is not closed by '---'") from None
        for line in lines[1:end]:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            key, sep, value = line.partition(":")
            if not sep:
                raise KnowledgeBaseError(f"{where}: front matter line {line!r} is not 'key: value'")
            meta[key.strip().lower()] = value.strip()
        lines = lines[end + 1 :]
    if "title" not in meta:
        heading = next((i for i, line in enumerate(lines) if line.strip()), None)
        if heading is not None and lines[heading].startswith("# "):
            meta["title"] = lines[heading][2:].strip()
            lines = lines[heading + 1 :]
    meta["body"] = "\n".join(lines).strip()
    return _article(meta, where)


def read_articles(path: str | Path) -> list[Article]:
    """Every article under ``path``: a Markdown file or a folder of them (``*.md``, sorted),
    a ``.csv`` or a ``.json`` file (a list of objects, or ``{"articles": [...]}``)."""
    path = Path(path)
    if not path.exists():
        raise KnowledgeBaseError(f"{path}: no such file or folder")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in (".md", ".csv", ".json"))
        articles = [a for f in files for a in read_articles(f)]
    elif path.suffix == ".md":
        articles = [parse_markdown(path.read_text(encoding="utf-8"), str(path), path.stem)]
    elif path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            lines = list(csv.DictReader(handle))
        articles = [_article(row, f"{path} row {i}") for i, row in enumerate(lines, 2)]
    elif path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        rows = data.get("articles") if isinstance(data, dict) else data
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise KnowledgeBaseError(f"{path}: expected a list of article objects")
        articles = [_article(row, f"{path} [{i}]") for i, row in enumerate(rows)]
    else:
        raise KnowledgeBaseError(f"{path}: not .md, .csv or .json")
    seen: dict[str, str] = {}
    for article in articles:
        if article.article_id in seen:
            raise KnowledgeBaseError(
                f"{article.source}: id {article.article_id!r} also used by {seen[article.article_id]}"
            )
        seen[article.article_id] = article.source
    return articles


def split_passages(body: str, max_words: int = PASSAGE_MAX_WORDS) -> list[str]:
    """Paragraphs, short neighbours merged and long ones cut at sentence ends, so that each
    passage can stand as a reply on its own."""
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", body) if p.strip()]
    pieces: list[str] = []
    for paragraph in paragraphs:
        words = paragraph.split()
        if len(words) <= max_words:
            pieces.append(paragraph)
            continue
        current: list[str] = []
        for sentence in re.split(r"(?<=[.!?])\s+", paragraph):
            if current and len(" ".join(current).split()) + len(sentence.split()) > max_words:
                pieces.append(" ".join(current))
                current = []
            current.append(sentence)
        if current:
            pieces.append(" ".join(current))
    passages: list[str] = []
    for piece in pieces:
        if passages and len(passages[-1].split()) + len(piece.split()) <= max_words // 2:
            passages[-1] = f"{passages[-1]} {piece}"
        else:
            passages.append(piece)
    return passages


def embedded_text(title: str, passage: str) -> str:
    """What the encoder embeds for a passage: the title carries the topic a passage may
    only imply ("It usually takes ..." under "When will my card arrive?")."""
    return f"{title}. {passage}"


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def from_bytes(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, dtype="<f4")


def article_document(
    article: Article, passages: Sequence[str], vectors: np.ndarray, encoder: EncoderId
) -> dict[str, Any]:
    return {
        "_id": article.article_id,
        "title": article.title,
        "body": article.body,
        "intents": list(article.intents),
        "source": article.source,
        "contentSha": article.content_sha,
        "passages": [
            {"text": text, "embedding": to_bytes(vector)}
            for text, vector in zip(passages, vectors, strict=True)
        ],
        "encoder": encoder.as_doc(),
        "updatedAt": datetime.now(UTC),
    }


@dataclass
class LoadReport:
    embedded: list[str] = field(default_factory=list)  # new or changed articles
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    passages: int = 0


def load_articles(
    collection: Collection[dict[str, Any]],
    articles: Iterable[Article],
    embed: Embed,
    encoder: EncoderId,
    replace: bool = False,
) -> LoadReport:
    """Upsert the articles, embedding only those whose content or encoder changed;
    ``replace``: also delete stored articles that are not among them."""
    report = LoadReport()
    articles = list(articles)
    stored = {
        doc["_id"]: doc
        for doc in collection.find({}, {"contentSha": 1, "encoder.sha256": 1, "passages.text": 1})
    }
    for article in articles:
        old = stored.get(article.article_id)
        passages = split_passages(article.body)
        if (
            old is not None
            and old.get("contentSha") == article.content_sha
            and (old.get("encoder") or {}).get("sha256") == encoder.sha256
        ):
            report.unchanged.append(article.article_id)
            report.passages += len(old.get("passages") or [])
            continue
        vectors = embed([embedded_text(article.title, p) for p in passages])
        collection.replace_one(
            {"_id": article.article_id},
            article_document(article, passages, vectors, encoder),
            upsert=True,
        )
        report.embedded.append(article.article_id)
        report.passages += len(passages)
    if replace:
        keep = {a.article_id for a in articles}
        report.removed = sorted(set(stored) - keep)
        if report.removed:
            collection.delete_many({"_id": {"$in": report.removed}})
    return report


@dataclass(frozen=True)
class PassageIndex:
    """Every passage of the knowledge base in memory: one unit-norm row per passage."""

    article_ids: list[str]
    titles: list[str]
    texts: list[str]
    intents: list[frozenset[str]]  # of the passage's article
    vectors: np.ndarray  # [passages, dim], float32
    digest: str  # changes whenever an article or the encoder changes

    @property
    def empty(self) -> bool:
        return not self.article_ids

    def scores(self, queries: np.ndarray) -> np.ndarray:
        """Cosine similarity of each (unit-norm) query with every passage: [queries, passages]."""
        return np.asarray(queries, dtype=np.float32) @ self.vectors.T


EMPTY_INDEX = PassageIndex([], [], [], [], np.zeros((0, 0), np.float32), "")


def fingerprint(docs: Iterable[dict[str, Any]]) -> str:
    """Digest of (id, content, encoder) of every article: equal iff nothing changed."""
    digest = hashlib.sha256()
    for doc in sorted(docs, key=lambda d: str(d["_id"])):
        sha = (doc.get("encoder") or {}).get("sha256", "")
        digest.update(f"{doc['_id']}\0{doc.get('contentSha', '')}\0{sha}\n".encode())
    return digest.hexdigest()[:16]


def build_index(docs: Sequence[dict[str, Any]], dim: int) -> PassageIndex:
    """The in-memory index of articles whose passages all carry a ``dim``-wide vector."""
    ids: list[str] = []
    titles: list[str] = []
    texts: list[str] = []
    intents: list[frozenset[str]] = []
    rows: list[np.ndarray] = []
    for doc in sorted(docs, key=lambda d: str(d["_id"])):
        tags = frozenset(doc.get("intents") or [])
        for passage in doc.get("passages") or []:
            vector = from_bytes(passage["embedding"])
            if vector.shape != (dim,):
                continue
            ids.append(str(doc["_id"]))
            titles.append(str(doc.get("title", "")))
            texts.append(str(passage.get("text", "")))
            intents.append(tags)
            rows.append(vector)
    vectors = np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), np.float32)
    return PassageIndex(ids, titles, texts, intents, vectors, fingerprint(docs))
