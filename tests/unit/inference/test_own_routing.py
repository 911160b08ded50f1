"""Routing of support messages: the served intent model's own map under the settings'."""

from __future__ import annotations

import pytest

from services.inference.intent import IntentResult
from services.inference.settings import InferenceSettings
from services.inference.support import model_routing, route_for

MODEL_MAP = {"return_shoes": "returns", "out_of_scope": "shop-triage", "bad": 3}


def result(intent: str, out_of_scope: bool = False) -> IntentResult:
    return IntentResult(intent, 0.9, out_of_scope, [])


def test_the_models_map_routes_when_the_settings_set_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LUMEN_INFERENCE_ROUTING", raising=False)
    routes = InferenceSettings().routes(model_routing({"routing": MODEL_MAP}))
    assert route_for(result("return_shoes"), routes) == "returns"
    assert route_for(result("out_of_scope", True), routes) == "shop-triage"
    assert route_for(result("sizing"), routes) == "general-support"  # the default's default
    assert route_for(None, routes) == "shop-triage"


def test_the_settings_override_the_models_map(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUMEN_INFERENCE_ROUTING", '{"return_shoes": "desk-2", "default": "x"}')
    routes = InferenceSettings().routes(model_routing({"routing": MODEL_MAP}))
    assert route_for(result("return_shoes"), routes) == "desk-2"
    assert route_for(result("sizing"), routes) == "x"
    assert route_for(result("out_of_scope", True), routes) == "shop-triage"


def test_a_model_without_a_map_keeps_the_settings_routing() -> None:
    assert model_routing({}) == {} and model_routing({"routing": ["a"]}) == {}
    assert model_routing({"routing": MODEL_MAP}) == {
        "return_shoes": "returns",
        "out_of_scope": "shop-triage",
    }
