"""The support assistant without models: knowledge-base files and passages, the ranking with
its intent boost, hand-offs, conversation context, and the messages it writes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from services.exporter.business import BusinessFigures
from services.exporter.collector import business_metrics
from services.inference.assistant import (
    HANDOFF_REPLY,
    Assistant,
    AssistRequest,
    ConversationMemory,
    decide,
    query_text,
    rank,
)
from services.inference.errors import InvalidArgument
from services.inference.intent import OUT_OF_SCOPE, IntentResult
from services.inference.knowledge_base import (
    EMPTY_INDEX,
    Article,
    EncoderId,
    KnowledgeBaseError,
    article_document,
    build_index,
    fingerprint,
    read_articles,
    split_passages,
)
from services.inference.settings import AssistSettings, InferenceSettings
from services.inference.support import output_record, parse_message
from shared.messages import SupportFeedback, SupportIntent

REPO = Path(__file__).resolve().parents[3]
ENCODER = EncoderId("text-encoder", 1, "sha-1")


def intent(name: str, confidence: float = 0.9, out: bool = False) -> IntentResult:
    return IntentResult(
        OUT_OF_SCOPE if out else name, confidence, out, [(name, confidence), ("other", 0.05)]
    )


def test_markdown_csv_and_json_articles_are_read_with_their_intents(tmp_path: Path) -> None:
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "a.md").write_text(
        "---\nid: card-arrival\ntitle: When will my card arrive?\n"
        "intents: [card_arrival, card_delivery_estimate]\n---\n\nIt takes 3 days.\n"
    )
    (folder / "b.md").write_text("# Closing your account\n\nGo to Profile.\n")
    (folder / "c.csv").write_text('title,body,intents\nFees,"Transfers are free.",transfer_fee\n')
    (folder / "d.json").write_text(
        json.dumps({"articles": [{"id": "pin", "title": "PIN", "body": "x", "intents": ["p"]}]})
    )
    articles = {a.article_id: a for a in read_articles(folder)}
    assert set(articles) == {"card-arrival", "b", "fees", "pin"}
    assert articles["card-arrival"].intents == ("card_arrival", "card_delivery_estimate")
    assert articles["card-arrival"].body == "It takes 3 days."
    assert articles["b"].title == "Closing your account" and articles["b"].body == "Go to Profile."
    assert articles["fees"].intents == ("transfer_fee",)
    assert articles["pin"].intents == ("p",)


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("x.md", "---\ntitle: T\n", "front matter is not closed"),
        ("x.md", "---\ntitle: T\n---\n", "no body"),
        ("x.md", "no heading here", "no title"),
        ("x.csv", "title,body\n,b\n", "row 2: no title"),
        ("x.json", '{"a": 1}', "expected a list"),
        ("x.txt", "", "not .md, .csv or .json"),
        ("x.md", "---\nid: a b\ntitle: T\n---\nbody\n", "id 'a b' is not"),
    ],
)
def test_a_bad_article_file_says_which_and_why(
    tmp_path: Path, name: str, text: str, reason: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(KnowledgeBaseError, match=reason):
        read_articles(path)


def test_two_articles_with_one_id_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("---\nid: same\ntitle: A\n---\nx\n")
    (tmp_path / "b.md").write_text("---\nid: same\ntitle: B\n---\ny\n")
    with pytest.raises(KnowledgeBaseError, match="also used by"):
        read_articles(tmp_path)


def test_passages_are_paragraphs_cut_at_sentences_and_short_ones_merged() -> None:
    long = " ".join(f"Sentence number {i} is here." for i in range(40))  # 200 words
    passages = split_passages(f"Short one.\n\nAnother short.\n\n{long}", max_words=80)
    assert passages[0] == "Short one. Another short."
    assert all(len(p.split()) <= 80 for p in passages)
    assert " ".join(passages[1:]) == long
    assert all(p.endswith(".") for p in passages)


def test_the_demo_knowledge_base_reads_and_every_article_has_known_intents() -> None:
    articles = read_articles(REPO / "data" / "kb" / "bank")
    labels = set(
        json.loads((REPO / "data" / "datasets" / "banking77" / "categories.json").read_text())
    )
    assert 20 <= len(articles) <= 40
    for article in articles:
        assert article.intents and set(article.intents) <= labels, article.article_id
        assert 1 <= len(split_passages(article.body)) <= 4


def index_of(*articles: tuple[str, list[str], list[float]]) -> Any:
    """An index of one-passage articles with the given unit vectors."""
    docs = []
    for article_id, intents, vector in articles:
        article = Article(
            article_id, article_id.title(), f"Answer of {article_id}.", tuple(intents)
        )
        v = np.asarray([vector], dtype=np.float32)
        docs.append(article_document(article, [article.body], v / np.linalg.norm(v), ENCODER))
    return build_index(docs, len(articles[0][2]))


def test_the_intent_boost_moves_tagged_articles_by_the_classifiers_probability() -> None:
    index = index_of(("fees", ["transfer_fee"], [1.0, 0.0]), ("card", ["card_arrival"], [0.8, 0.6]))
    query = np.asarray([1.0, 0.0], dtype=np.float32)
    plain = rank(index, query, intent("card_arrival"), 0.0, 3)
    assert [h.article_id for h in plain] == ["fees", "card"]
    sure = rank(index, query, intent("card_arrival", 0.9), 0.3, 3)
    assert [h.article_id for h in sure] == ["card", "fees"]
    assert sure[0].score == pytest.approx(0.8 + 0.3 * 0.9)
    unsure = rank(index, query, intent("card_arrival", 0.3), 0.3, 3)
    assert [h.article_id for h in unsure] == ["fees", "card"]  # 0.8 + 0.09 < 1.0
    out = rank(index, query, intent("card_arrival", 0.9, out=True), 0.3, 3)
    assert [h.score for h in out] == [h.score for h in plain]
    assert rank(EMPTY_INDEX, query, intent("x"), 0.3, 3) == []


def test_one_passage_per_article_and_at_most_top() -> None:
    article = Article("a", "A", "One.\n\nTwo.", ("x",))
    vectors = np.asarray([[1.0, 0.0], [0.9, 0.1]], dtype=np.float32)
    docs = [
        article_document(article, ["One.", "Two."], vectors, ENCODER),
        article_document(Article("b", "B", "Three."), ["Three."], vectors[:1] * 0.5, ENCODER),
    ]
    index = build_index(docs, 2)
    hits = rank(index, np.asarray([1.0, 0.0], np.float32), intent("x"), 0.0, 3)
    assert [(h.article_id, h.text) for h in hits] == [("a", "One."), ("b", "Three.")]
    assert len(rank(index, np.asarray([1.0, 0.0], np.float32), intent("x"), 0.0, 1)) == 1


def test_hand_off_when_out_of_scope_unsure_or_nothing_found() -> None:
    index = index_of(("fees", ["transfer_fee"], [1.0, 0.0]))
    hits = rank(index, np.asarray([0.6, 0.8], np.float32), intent("transfer_fee", 0.5), 0.0, 3)
    assert decide(intent("transfer_fee"), hits, 0.5) == (
        "Answer of fees.",
        pytest.approx(0.6),
        None,
    )
    assert decide(intent("transfer_fee"), hits, 0.7) == (
        HANDOFF_REPLY,
        pytest.approx(0.6),
        "low_confidence",
    )
    assert decide(intent("x", out=True), hits, 0.5)[2] == "out_of_scope"
    assert decide(intent("transfer_fee"), [], 0.5) == (HANDOFF_REPLY, 0.0, "no_answer")


def test_memory_keeps_the_last_turns_forgets_idle_conversations_and_is_bounded() -> None:
    now = [0.0]
    memory = ConversationMemory(turns=2, ttl=10.0, capacity=2, clock=lambda: now[0])
    for text in ("one", "two", "three"):
        memory.remember("c1", text)
    assert memory.context("c1") == ["two", "three"]
    memory.remember("c2", "x")
    memory.remember("c3", "y")  # over capacity: c1, the least recently active, goes
    assert memory.context("c1") == [] and len(memory) == 2
    now[0] = 11.0
    assert memory.context("c2") == []
    memory.remember("c3", "z")  # idle past the TTL: starts again
    assert memory.context("c3") == ["z"]


def test_a_short_follow_up_is_read_with_the_earlier_messages() -> None:
    assert query_text("and how long?", ["my card has not come"], 6) == (
        "my card has not come and how long?",
        1,
    )
    long = "I also want to know what the fee is for sending money abroad"
    assert query_text(long, ["my card has not come"], 6) == (long, 0)
    assert query_text("and how long?", [], 6) == ("and how long?", 0)


class FakeClassifier:
    """Classifies by keyword; records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def classify(
        self, texts: list[str], top_k: int = 0, deadline: float | None = None
    ) -> tuple[list[IntentResult], Any]:
        self.asked.extend(texts)
        results = [
            intent("card_arrival") if "card" in t else intent("x", 0.2, out=True) for t in texts
        ]
        return results, type("Model", (), {"name": "intent-classifier", "version": 7})()


class FakeKnowledgeBase:
    """Vectors by keyword: "card" texts point at the card article, the rest elsewhere."""

    def __init__(self) -> None:
        self.index = index_of(
            ("card", ["card_arrival"], [1.0, 0.0]), ("fees", ["transfer_fee"], [0.0, 1.0])
        )
        self.encoder_id = "text-encoder:1"

    async def embed(self, texts: list[str], deadline: float | None = None) -> np.ndarray:
        return np.asarray([[1.0, 0.0] if "card" in t else [0.0, 1.0] for t in texts], np.float32)


def assistant(**assist: Any) -> tuple[Assistant, FakeClassifier]:
    classifier = FakeClassifier()
    settings = InferenceSettings(assist=AssistSettings(**assist))
    # The fakes stand in for the classifier and the knowledge-base cache (duck-typed).
    return Assistant(classifier, FakeKnowledgeBase(), settings), classifier  # type: ignore[arg-type]


def test_the_assistant_answers_from_the_best_passage_and_remembers_the_conversation() -> None:
    helper, classifier = assistant(context_turns=2, followup_max_words=3)
    answers, model = asyncio.run(
        helper.answer(
            [
                AssistRequest("where is my card", "c1"),
                AssistRequest("how long now?", "c1"),  # a follow-up in the same call
                AssistRequest("tell me a joke", "c2"),
            ]
        )
    )
    first, follow_up, joke = answers
    assert (first.reply, first.handoff, first.earlier_messages) == ("Answer of card.", False, 0)
    assert first.hits[0].article_id == "card" and first.confidence == 1.0
    assert (follow_up.context_messages, follow_up.earlier_messages) == (1, 1)
    assert follow_up.reply == "Answer of card."  # found through the earlier message
    assert classifier.asked[1] == "where is my card how long now?"
    assert (joke.handoff_reason, joke.reply) == ("out_of_scope", HANDOFF_REPLY)
    assert model.version == 7
    later, _ = asyncio.run(helper.answer([AssistRequest("ok?", "c1")]))
    assert classifier.asked[-1] == "where is my card how long now? ok?"
    assert later[0].context_messages == 2
    asyncio.run(helper.answer([AssistRequest("ok?", "c1", context=["fees"])]))
    assert classifier.asked[-1] == "fees ok?"  # the caller's context wins over the memory


def test_the_assistant_refuses_bad_input() -> None:
    helper, _ = assistant()
    for bad in (
        AssistRequest("   "),
        AssistRequest("x" * 2001),
        AssistRequest("ok", context=["a"] * 11),
        AssistRequest("ok", context=[""]),
    ):
        with pytest.raises(InvalidArgument):
            asyncio.run(helper.answer([bad]))


def test_support_intents_version_2_carries_the_suggestion_and_keeps_version_1_fields() -> None:
    helper, _ = assistant()
    answers, _ = asyncio.run(helper.answer([AssistRequest("where is my card", "c1")]))
    message, error = parse_message(b'{"conversationId": "c1", "text": "where is my card"}', 2000)
    routing = {"out_of_scope": "human", "default": "support"}
    plain = output_record(message, answers[0].intent, error, routing, ("m", "7"))
    v1 = orjson.loads(plain.encode())
    suggested = output_record(
        message, answers[0].intent, error, routing, ("m", "7"), answers[0].suggestion()
    )
    v2 = orjson.loads(suggested.encode())
    assert v1["schemaVersion"] == 1 and "suggestion" not in v1
    assert v2["schemaVersion"] == 2
    suggestion = v2.pop("suggestion")
    v2.pop("classifiedAt"), v1.pop("classifiedAt")
    assert {**v2, "schemaVersion": 1} == v1  # only the suggestion was added
    assert suggestion["text"] == "Answer of card." and suggestion["articleId"] == "card"
    assert suggestion["handoff"] is False and suggestion["passages"][0]["articleId"] == "card"
    assert suggestion["encoder"] == "text-encoder:1"
    decoded = SupportIntent.decode(suggested.encode())
    assert decoded.suggestion is not None and decoded.suggestion.article_id == "card"
    # A reader that uses only version 1's fields counts it as before.
    figures = BusinessFigures(60, 5, 50)
    figures.observe_intent(decoded)
    assert figures.snapshot(0.0).intents == {"card_arrival": 1}


def test_feedback_is_counted_by_intent_model_version_and_action() -> None:
    figures = BusinessFigures(60, 5, max_label_values=2)
    for action, intent_name, version in [
        ("accept", "card_arrival", "1"),
        ("accept", "card_arrival", "1"),
        ("edit", "card_arrival", "2"),
        ("reject", "transfer_fee", "1"),
        ("reject", "third_intent", "1"),  # over the label cap: other
        ("accept", "Bad Label!", "1"),
    ]:
        raw = SupportFeedback(
            conversation_id="c",
            message_id="m",
            action=action,
            intent=intent_name,
            model_name="intent-classifier",
            model_version=version,
        ).encode()
        figures.observe_feedback(SupportFeedback.decode(raw))
    assert figures.snapshot(0.0).feedback == {
        ("card_arrival", "1", "accept"): 2,
        ("card_arrival", "2", "edit"): 1,
        ("transfer_fee", "1", "reject"): 1,
        ("other", "1", "reject"): 1,
        ("other", "1", "accept"): 1,
    }
    family = next(
        m for m in business_metrics(figures, 0.0) if m.name == "lumen_business_support_feedback"
    )
    samples = {tuple(s.labels.values()): s.value for s in family.samples}
    assert samples[("card_arrival", "1", "accept")] == 2.0
    with pytest.raises(ValueError, match="action"):
        SupportFeedback.decode(b'{"action": "maybe"}')


def test_the_index_fingerprint_changes_with_content_or_encoder() -> None:
    doc = article_document(Article("a", "A", "x"), ["x"], np.ones((1, 2), np.float32), ENCODER)
    other = {**doc, "encoder": {"sha256": "sha-2"}}
    changed = {**doc, "contentSha": "different"}
    assert fingerprint([doc]) != fingerprint([other]) != fingerprint([changed])
    assert build_index([doc], 3).empty  # vectors of another width are left out


def test_the_router_routes_without_suggestions_when_the_assistant_is_unavailable() -> None:
    from services.inference.errors import Unavailable
    from services.inference.support import SupportRouter
    from shared.messages import SupportMessage

    helper, classifier = assistant()

    async def unavailable(*_: Any, **__: Any) -> Any:
        raise Unavailable("text-encoder is not loaded")

    helper.answer = unavailable  # type: ignore[method-assign]  # the encoder went away
    loop = asyncio.new_event_loop()  # the router's; unused by _classify
    router = SupportRouter(classifier, helper.settings, loop, helper)  # type: ignore[arg-type]  # the fake classifier
    messages = [SupportMessage(conversation_id="c", text="where is my card")]
    results, answers, model = asyncio.run(router._classify(messages))
    assert [r.intent for r in results] == ["card_arrival"] and answers == [None]
    assert model.version == 7
    helper.answer = Assistant.answer.__get__(helper)  # type: ignore[method-assign]
    results, answers, _ = asyncio.run(router._classify(messages))
    assert answers[0] is not None and answers[0].reply == "Answer of card."
    loop.close()
