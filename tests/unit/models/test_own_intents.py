"""A product's own intents: reading labelled files (bad rows named by line), the gate's
decisions, and the gated flow on a private registry (the frozen-encoder method, for speed)."""

from __future__ import annotations

import functools
import json
import random
from pathlib import Path

import pytest

from models.intent.gate import decide
from models.intent.own_data import (
    DataError,
    IntentModel,
    LabelledRows,
    fit_frozen_logreg,
    read_labelled_file,
    read_routes,
)
from models.intent.own_register import train_and_publish
from shared.model_registry import get_version, list_versions

SHOE_SHOP = Path(__file__).resolve().parents[3] / "data" / "intents" / "shoe-shop.csv"
NAME = "shop-intents"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_csv_gives_texts_labels_and_the_routing_map() -> None:
    rows = read_labelled_file(SHOE_SHOP)
    assert len(rows.texts) == 56 and rows.counts()["oos"] == 8
    assert set(rows.intents) == {
        "order_status",
        "return_shoes",
        "size_exchange",
        "shoe_sizing",
        "store_hours",
        "discount_code",
    }
    assert rows.routing["size_exchange"] == "returns"
    assert rows.routing["out_of_scope"] == "shop-triage"  # the oos rows' queue
    assert rows.trained_from["source"] == "file" and len(rows.trained_from["sha256"]) == 64


def test_jsonl_empty_labels_are_out_of_scope_and_duplicates_count_once(tmp_path: Path) -> None:
    lines: list[dict[str, str | None]]
    lines = [{"text": f"where is parcel {i}", "label": "track"} for i in range(3)]
    lines += [{"text": f"refund order {i}", "label": "refund", "queue": "money"} for i in range(3)]
    lines += [{"text": f"weather day {i}", "label": ""} for i in range(2)]
    lines += [
        {"text": "sing a song", "label": None},
        {"text": "where is parcel 0", "label": "track"},
    ]
    path = write(tmp_path, "rows.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n\n")
    rows = read_labelled_file(path)
    assert rows.counts() == {"track": 3, "refund": 3, "oos": 3}
    assert rows.routing == {"refund": "money"} and rows.dropped_duplicates == 1


@pytest.mark.parametrize(
    ("name", "body", "problem"),
    [
        ("a.csv", "text,intent\nhi,x\n", ":1: the header needs the columns text and label"),
        ("b.csv", "text,label\nfine,a\n  ,a\n", ":3: empty or missing text"),
        ("c.csv", "text,label\nfine,a\nok\n", ":3: no label field"),
        ("d.csv", "text,label\nfine,a\nok,b,extra\n", ":3: more fields than the header"),
        (
            "e.csv",
            "text,label,queue\na1,a,q1\na2,a,q2\n",
            ":3: 'a' goes to queue 'q2' here and 'q1' on line 2",
        ),
        (
            "f.csv",
            'text,label\n"multi\nline",a\nsame,a\nsame,b\n',
            ":5: the same text is labelled 'a' on line 4 and 'b' here",
        ),
        ("g.csv", "text,label\nhi,default\n", ":2: the label 'default' is reserved"),
        ("h.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": \n', ":2: not JSON"),
        ("i.jsonl", '{"text": "a", "label": "x"}\n["b", "y"]\n', ":2: expected a JSON object"),
        ("j.jsonl", '{"text": "a"}\n', ':1: no label (use "oos" for out-of-scope)'),
        ("k.jsonl", '{"text": "a", "label": 3}\n', ":1: the label must be a string"),
    ],
)
def test_a_bad_row_is_refused_with_its_line(
    tmp_path: Path, name: str, body: str, problem: str
) -> None:
    with pytest.raises(DataError) as caught:
        read_labelled_file(write(tmp_path, name, body))
    assert problem in str(caught.value)


def test_too_few_examples_or_intents_are_refused(tmp_path: Path) -> None:
    few = "text,label\n" + "".join(f"a{i},a\n" for i in range(3)) + "b1,b\nb2,b\n"
    with pytest.raises(DataError, match=r"at least 3 examples; too few: b \(2\)"):
        read_labelled_file(write(tmp_path, "few.csv", few))
    one = (
        "text,label\n"
        + "".join(f"a{i},a\n" for i in range(3))
        + "".join(f"o{i},oos\n" for i in range(3))
    )
    with pytest.raises(DataError, match="at least 2 intents"):
        read_labelled_file(write(tmp_path, "one.csv", one))


def test_a_routes_file_must_map_names_to_queues(tmp_path: Path) -> None:
    assert read_routes(write(tmp_path, "r.json", '{"a": " q1 "}')) == {"a": "q1"}
    with pytest.raises(DataError, match="intent -> queue"):
        read_routes(write(tmp_path, "bad.json", '{"a": 1}'))


# --- the gate -------------------------------------------------------------------------------


def test_the_gate_compares_on_the_same_rows_with_a_margin() -> None:
    better, worse = {"accuracy": 0.9}, {"accuracy": 0.7}
    assert decide(better, None).decision == "published"
    assert decide(better, worse).decision == "published"
    assert decide(worse, better).decision == "refused"
    assert decide(worse, better, margin=0.25).decision == "published"
    forced = decide(worse, better, force=True)
    assert forced.decision == "forced" and "by force" in forced.reason
    other = decide(worse, {}, unknown=["return_shoes"])
    assert other.decision == "published" and "another taxonomy" in other.reason
    with pytest.raises(ValueError, match="negative"):
        decide(better, worse, margin=-0.1)


def fit_on_shuffled_labels(texts: list[str], labels: list[str], *, seed: int = 0) -> IntentModel:
    """A model that learnt nothing: its training labels are shuffled (the held-out rows the
    gate scores keep their true labels)."""
    noise = list(labels)
    random.Random(seed + 7).shuffle(noise)
    return fit_frozen_logreg(texts, noise, seed=seed)


def test_the_gate_refuses_a_model_trained_on_shuffled_labels(
    tmp_path: Path, minilm_dir: Path
) -> None:
    rows = read_labelled_file(SHOE_SHOP)
    run = functools.partial(
        train_and_publish, model_name=NAME, registry=tmp_path, fit=fit_frozen_logreg, margin=0.0
    )
    first = run(rows, fit=fit_on_shuffled_labels)
    assert first.decision == "published" and first.version == 1
    assert "no intent model is served" in first.reason

    real = run(rows)
    assert real.decision == "published" and real.version == 2 and real.served_version == 1
    assert real.metrics["challenger"]["accuracy"] > real.metrics["champion"]["accuracy"]
    assert real.metrics["challenger"]["accuracy"] >= 0.8

    noise = run(rows, fit=fit_on_shuffled_labels)
    assert noise.decision == "refused" and noise.version is None
    assert noise.metrics["champion"]["accuracy"] == real.metrics["challenger"]["accuracy"]
    assert list_versions(NAME, tmp_path) == [1, 2]

    forced = run(rows, fit=fit_on_shuffled_labels, force=True)
    assert forced.decision == "forced" and forced.version == 3
    served = get_version(NAME, 3, tmp_path, verify=True)
    assert served.config.extra["gate"]["forced"] is True
    assert "published by force" in (served.path / "README.md").read_text()
    assert served.config.extra["routing"]["store_hours"] == "stores"
    assert served.config.extra["trained_from"]["sha256"] == rows.trained_from["sha256"]
    assert served.config.extra["gate"]["served_version"] == 2
    assert served.config.extra["counts"]["discount_code"] == 8

    again = run(rows, fit=fit_on_shuffled_labels)
    assert again.decision == "skipped" and list_versions(NAME, tmp_path) == [1, 2, 3]


def test_a_served_model_of_another_taxonomy_is_not_comparable(
    tmp_path: Path, minilm_dir: Path
) -> None:
    rows = read_labelled_file(SHOE_SHOP)
    train_and_publish(rows, model_name=NAME, registry=tmp_path, fit=fit_frozen_logreg)
    texts = [f"please cancel subscription number {i}" for i in range(4)]
    texts += [f"upgrade my plan to tier {i}" for i in range(4)]
    other = LabelledRows(texts, ["cancel"] * 4 + ["upgrade"] * 4, trained_from={"x": 1})
    outcome = train_and_publish(other, model_name=NAME, registry=tmp_path, fit=fit_frozen_logreg)
    assert outcome.decision == "published" and outcome.metrics["champion"] is None
    assert "another taxonomy" in outcome.reason and "cancel" in outcome.reason
    card = (tmp_path / NAME / str(outcome.version) / "README.md").read_text()
    assert "another taxonomy" in card


# --- the command line -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["train", "recommender", "--data", "x.csv"], "trains intent"),
        (["train", "intent", "--data", "x.csv", "--from-labels"], "one of them"),
        (["train", "intent", "--data", "x.csv", "--small"], "at full size"),
        (["train", "intent", "--data", "x.csv", "--margin", "2"], "between 0 and 1"),
        (["train", "intent", "--data", "x.csv", "--since-days", "3"], "with --from-labels"),
        (["train", "intent", "--routes", "r.json"], "need --data or --from-labels"),
    ],
)
def test_the_command_line_refuses_options_that_do_not_go_together(
    argv: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from models.cli import main

    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2 and problem in capsys.readouterr().err


def test_unusable_data_exits_2_with_the_line_in_the_outcome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models.cli import main

    monkeypatch.setenv("LUMEN_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("LUMEN_MODEL_REPOSITORY", str(tmp_path / "registry"))
    bad = write(tmp_path, "bad.csv", "text,label\nfine,a\n,b\n")
    result = tmp_path / "outcome.json"
    assert main(["train", "intent", "--data", str(bad), "--json-result", str(result)]) == 2
    outcome = json.loads(result.read_text())
    assert (
        outcome["decision"] == "failed" and f"{bad}:3: empty or missing text" in outcome["reason"]
    )
    assert not (tmp_path / "registry").exists()
