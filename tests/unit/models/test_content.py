"""Content edges for cold items (``models/recommender/content.py``): a cold item becomes
reachable from the warm items its text resembles, its reason is the most similar history
item, the served graph agrees, and alpha comes from the tuning split when it can."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from models.recommender import content
from models.recommender.model_choice import DenseRecommender, fit
from models.recommender.sequential import SequentialParams
from shared.model_registry import get_version
from tests.unit.inference import tiny_models as tiny

PARAMS = SequentialParams(max_len=5, ease_l2=1.0, trans_l2=1.0)
SPACE, LOVE, COLD = [0, 1, 2], [3, 4], 5  # item rows; item 5 has no interactions


def embeddings() -> np.ndarray:
    """Space items point one way, love items another; the cold item is a space item,
    closest to item 1."""
    vectors = np.zeros((6, 4), dtype=np.float32)
    vectors[SPACE, 0] = 1.0
    vectors[SPACE, 1] = [0.3, 0.1, -0.3]
    vectors[LOVE, 2] = 1.0
    vectors[LOVE, 3] = [0.2, -0.2]
    vectors[COLD] = [1.0, 0.15, 0.0, 0.0]
    return vectors


def histories() -> list[np.ndarray]:
    space = [np.array(h) for h in ([0, 1, 2], [1, 2, 0], [2, 0, 1], [0, 2])]
    love = [np.array(h) for h in ([3, 4], [4, 3], [3, 4, 3])]
    return space + love


def model() -> DenseRecommender:
    fitted = fit(histories(), 6, PARAMS)
    assert isinstance(fitted, DenseRecommender)
    return fitted


def test_a_cold_item_is_reached_from_the_warm_items_its_text_resembles() -> None:
    recommender = model()
    space_user, love_user = recommender.recent([np.array([1])]), recommender.recent([np.array([3])])
    before = recommender.score_recent(np.concatenate([space_user, love_user]))
    assert before[0, COLD] == 0.0 and before[1, COLD] == 0.0  # no interactions: unreachable

    edges = content.add_content_edges(recommender, embeddings(), histories(), neighbours=2)
    assert edges.cold_ids([f"i{r}" for r in range(6)]) == ["i5"]
    assert sorted(edges.warm.tolist()) == [0, 1] and set(edges.cold.tolist()) == {COLD}
    assert edges.alpha_from == "default" and edges.alpha > 0

    after = recommender.score_recent(np.concatenate([space_user, love_user]))
    # Linked from item 1 with weight alpha * cosine; a love item gives it nothing.
    assert after[0, COLD] > 0.0 and after[1, COLD] == 0.0
    np.testing.assert_allclose(np.delete(after, COLD, axis=1), np.delete(before, COLD, axis=1))

    # The reason is the history item most similar to the cold item (1, not 3 or 0).
    history = recommender.recent([np.array([3, 0, 1])])
    top = np.array([[COLD]])
    position = int(recommender.reasons(history, top)[0, 0])
    assert history[0, position] == 1


def test_the_served_graph_ranks_and_explains_the_cold_item_like_the_model() -> None:
    recommender = model()
    content.add_content_edges(recommender, embeddings(), histories(), neighbours=2)
    prior = np.zeros(6, dtype=np.float32)
    sess = ort.InferenceSession(recommender.to_onnx(prior).SerializeToString())
    recent = recommender.recent([np.array([3, 0, 1])])
    exclude = np.zeros((1, 6), dtype=bool)
    exclude[0, [3, 0, 1]] = True  # seen: the cold item competes with item 2 and 4
    top_items, top_scores, top_reasons = sess.run(
        ["top_items", "top_scores", "top_reasons"],
        {"recent_items": recent, "exclude_mask": exclude, "k": np.array([3], dtype=np.int64)},
    )
    reference = recommender.score_recent(recent)[0]
    assert COLD in top_items[0].tolist()
    np.testing.assert_allclose(top_scores[0], reference[top_items[0]], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(top_reasons, recommender.reasons(recent, top_items))


def test_alpha_is_chosen_on_tuning_targets_when_some_are_cold() -> None:
    recommender = model()
    ease_before = recommender.ease.copy()
    # Tuning: two space users whose next item is the cold one, one love user (warm target).
    tuning = ([np.array([0, 1]), np.array([2, 1]), np.array([3])], np.array([COLD, COLD, 4]))
    edges = content.add_content_edges(recommender, embeddings(), histories(), tuning, 2)
    assert edges.alpha_from == "tuning"
    assert [t["alpha"] for t in edges.tuning_trace] == sorted(
        t["alpha"] for t in edges.tuning_trace
    )
    overall = max(t["ndcg@10"] for t in edges.tuning_trace)
    affordable = [
        t for t in edges.tuning_trace if t["ndcg@10"] >= (1 - content.MAX_TUNING_LOSS) * overall
    ]
    best = max(affordable, key=lambda t: t["ndcg@10_cold_targets"])
    assert edges.alpha == best["alpha"]
    # The smallest weight leaves a cold target below the item 2 the space users go to.
    assert edges.tuning_trace[0]["ndcg@10"] < best["ndcg@10"]
    assert best["ndcg@10_cold_targets"] > 0
    # Tuning left the model as it was, but for the chosen edges.
    added = recommender.ease - ease_before
    expected = np.zeros_like(added)
    np.add.at(expected, (edges.warm, edges.cold), edges.alpha * edges.cosine)
    np.testing.assert_allclose(added, expected, atol=1e-6)

    # No cold tuning target: the default, scaled to the model's scores.
    plain = model()
    warm_only = ([np.array([0, 1])], np.array([2]))
    fallback = content.add_content_edges(plain, embeddings(), histories(), warm_only, 2)
    assert fallback.alpha_from == "default"
    assert fallback.alpha == content.DEFAULT_ALPHA_SCALE * content.default_alpha(
        model(), histories(), fallback.cosine, fallback.warm, fallback.cold
    )


def test_catalogue_texts_are_embedded_with_the_registry_encoder(tmp_path: Path) -> None:
    tiny.write_encoder(tmp_path)
    titles = ["space robots", "toy story", "love story", "space robots cowboys"]
    categories = [["Sci-Fi"], ["Animation"], ["Romance"], []]
    texts = content.catalogue_texts(titles, categories)
    assert texts[0] == "space robots Categories: Sci-Fi." and texts[3] == "space robots cowboys"
    vectors = content.embed_texts(texts, get_version("text-encoder", root=tmp_path))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)

    # Item 3 is cold; users move between the other three.
    train = [np.array([0, 1, 2]), np.array([1, 0]), np.array([2, 1])]
    recommender = fit(train, 4, PARAMS)
    edges = content.add_catalogue_content(recommender, titles, categories, train, encoder=tmp_path)
    assert edges.cold_rows.tolist() == [3]
    sims = vectors[:3] @ vectors[3]
    # Its strongest edge comes from the item whose text it shares most words with.
    assert int(edges.warm[np.argmax(edges.cosine)]) == int(np.argmax(sims)) == 0


def test_the_final_refit_takes_the_alpha_tuned_on_the_training_part(tmp_path: Path) -> None:
    tiny.write_encoder(tmp_path)
    titles = ["space robots", "space toy", "robots story", "love story", "love money", "space"]
    tuning = ([np.array([0, 1]), np.array([2, 1]), np.array([3])], np.array([COLD, COLD, 4]))
    on_training_part = model()
    vectors = content.embed_texts(titles, get_version("text-encoder", root=tmp_path))
    expected = content.add_content_edges(on_training_part, vectors, histories(), tuning)
    assert expected.alpha_from == "tuning"

    final = model()
    edges = content.add_catalogue_content(
        final, titles, None, histories(), tuning, encoder=tmp_path, tuning_fit=histories()
    )
    assert (edges.alpha_from, edges.alpha) == ("tuning", expected.alpha)
    assert edges.tuning_trace == expected.tuning_trace
    np.testing.assert_allclose(final.ease, on_training_part.ease, atol=1e-6)


def test_without_an_encoder_no_edges_are_added_and_cold_items_are_still_named(
    tmp_path: Path,
) -> None:
    recommender = model()
    before = recommender.ease.copy()
    edges = content.add_catalogue_content(
        recommender, ["a"] * 6, None, histories(), encoder=tmp_path
    )
    assert edges.alpha_from == "no encoder" and edges.cold_rows.tolist() == [COLD]
    assert len(edges.cosine) == 0
    np.testing.assert_array_equal(recommender.ease, before)


def test_training_from_events_reaches_a_new_item_through_its_text(tmp_path: Path) -> None:
    """The trainer's flow (models/recommender/from_events.py) with a registry that has a
    text encoder: the new item is listed cold and reaches shoppers of similar items."""
    from models.evaluation import session
    from models.recommender.from_events import split_store_data, train_and_gate
    from models.recommender.own_data import build
    from models.runtime.items import ItemIndex
    from shared.catalogue import CatalogueItem
    from tests.unit.models import own_product

    words = ("space", "love", "money", "weather")  # words the tiny encoder knows
    items = [
        CatalogueItem(own_product.sku(c, p), title=f"{words[c]} {words[c]} {p}")
        for c in range(len(words))
        for p in range(own_product.PER_CATEGORY)
    ]
    items.append(CatalogueItem("sku-new", title="space robots"))
    walks = own_product.walks(80, seed=0)
    data = build(items, own_product.documents(walks), "shop")
    tiny.write_encoder(tmp_path)
    outcome = train_and_gate(data, split_store_data(data), tmp_path)
    assert outcome.decision == "published"

    version = get_version("recommender", root=tmp_path)
    index = ItemIndex.load(version.file("items.json"))
    assert index.cold == {"sku-new"}
    space_shopper = next(w for w in walks.values() if w[0].startswith("sku-garden"))
    recent = index.recent_items([space_shopper], version.config.max_history() or 50)
    exclude = index.exclude_mask([space_shopper])
    top_items, top_scores, top_reasons = session(version.model_path).run(
        ["top_items", "top_scores", "top_reasons"],
        {"recent_items": recent, "exclude_mask": exclude, "k": np.array([10], dtype=np.int64)},
    )
    returned = index.ids(top_items)[0]
    assert "sku-new" in returned
    # No interactions, so no prior: its score is what the content edges give it.
    assert top_scores[0][returned.index("sku-new")] > 0
    because = int(recent[0, top_reasons[0][returned.index("sku-new")]])
    assert index.item_ids[because].startswith("sku-garden")  # a "space" item
