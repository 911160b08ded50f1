"""``python -m models train recommender --from-events``: its usage errors and its failures."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from models.cli import EXIT_UNREACHABLE, main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "search", "--from-events"], "recommender only"),
        (["train", "recommender", "--from-events", "--small"], "recommender only"),
        (["train", "recommender", "--margin", "0.1"], "need --from-events"),
        (["train", "recommender", "--json-result", "x.json"], "need --from-events"),
        (["train", "recommender", "--from-events", "--margin", "-0.1"], "between 0 and 1"),
        (["train", "recommender", "--from-events", "--since-days", "0"], "positive"),
    ],
)
def test_wrong_usage_exits_2_with_the_reason(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_an_unreachable_store_exits_3_and_writes_a_failed_outcome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("LUMEN_MONGO_URI", f"mongodb://127.0.0.1:{port}/?directConnection=true")
    monkeypatch.setenv("LUMEN_MONGO_TIMEOUT_MS", "200")
    monkeypatch.setenv("LUMEN_MONGO_DATABASE", "nowhere")
    monkeypatch.setenv("LUMEN_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("LUMEN_MODEL_REPOSITORY", str(tmp_path / "registry"))
    result = tmp_path / "result.json"

    code = main(["train", "recommender", "--from-events", "--json-result", str(result)])

    assert code == EXIT_UNREACHABLE
    outcome = json.loads(result.read_text())
    assert outcome["decision"] == "failed" and "MongoDB unreachable" in outcome["reason"]
    assert outcome["database"] == "nowhere" and outcome["version"] is None
    assert "failed" in capsys.readouterr().err
    assert not (tmp_path / "registry").exists()


def test_lumen_train_passes_the_same_options_and_exit_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from lumen_cli.main import main as lumen

    with pytest.raises(SystemExit) as exited:
        lumen(["train", "recommender", "--from-events", "--margin", "2"])
    assert exited.value.code == 2 and "between 0 and 1" in capsys.readouterr().err

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("LUMEN_MONGO_URI", f"mongodb://127.0.0.1:{port}/?directConnection=true")
    monkeypatch.setenv("LUMEN_MONGO_TIMEOUT_MS", "200")
    monkeypatch.setenv("LUMEN_RUNS_DIR", str(tmp_path / "runs"))
    assert lumen(["train", "recommender", "--from-events", "--force"]) == EXIT_UNREACHABLE


@pytest.mark.parametrize(
    ("rest", "sent"),
    [
        (["recommender"], ["recommender", "--from-events"]),
        (["recommender", "--force"], ["recommender", "--from-events", "--force"]),
        (["recommender", "--from-events", "--force"], ["recommender", "--from-events", "--force"]),
        (["recommender", "--reference", "--small"], ["recommender", "--small"]),
        (["intent", "--force"], ["intent", "--force"]),
        ([], []),
    ],
)
def test_lumen_train_recommender_learns_from_events_unless_the_reference_is_asked(
    rest: list[str], sent: list[str]
) -> None:
    from lumen_cli.commands.model_cmds import recommender_source

    assert recommender_source(rest) == sent
