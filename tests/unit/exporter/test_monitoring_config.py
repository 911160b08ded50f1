"""Dashboards match their code and Grafana's strict schema; every alert is documented."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from monitoring import expressions
from monitoring.dashboards import build

REPO = Path(__file__).resolve().parents[3]
SCHEMAS = REPO / "monitoring" / "grafana" / "schema"
RUNBOOK = REPO / "docs" / "operations" / "runbook.md"


def load(name: str) -> Any:
    return json.loads((SCHEMAS / name).read_text())


DASHBOARD = jsonschema.Draft7Validator(load("dashboard.schema.json"))
TARGET = jsonschema.Draft7Validator(load("prometheus-target.schema.json"))
FILES = sorted((REPO / "monitoring" / "grafana" / "dashboards").glob("*.json"))


def errors(dashboard: dict[str, Any]) -> list[str]:
    found = [e.message for e in DASHBOARD.iter_errors(dashboard)]
    for panel in dashboard.get("panels", []):
        found += [e.message for t in panel.get("targets", []) for e in TARGET.iter_errors(t)]
    return found


def test_committed_dashboards_are_what_the_code_builds() -> None:
    built = build.rendered()
    assert sorted(built) == [f.name for f in FILES]
    for path in FILES:
        assert path.read_text() == built[path.name], f"{path.name} is stale: run the build"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_dashboard_validates_against_grafanas_schema(path: Path) -> None:
    assert errors(json.loads(path.read_text())) == []


@pytest.mark.parametrize(
    "where",
    ["dashboard", "panel", "gridPos", "field defaults", "threshold step", "variable", "target"],
)
def test_an_unknown_key_anywhere_fails_validation(where: str) -> None:
    dashboard = json.loads(FILES[0].read_text())
    broken = copy.deepcopy(dashboard)
    panel = next(p for p in broken["panels"] if p["type"] != "row")
    spot = {
        "dashboard": broken,
        "panel": panel,
        "gridPos": panel["gridPos"],
        "field defaults": panel["fieldConfig"]["defaults"],
        "threshold step": panel["fieldConfig"]["defaults"]["thresholds"]["steps"][0],
        "variable": broken["templating"]["list"][1],
        "target": panel["targets"][0],
    }[where]
    spot["lengend"] = "misspelt"
    assert errors(broken), f"an unknown key in the {where} was accepted"


def test_every_alert_has_a_summary_description_and_runbook_section() -> None:
    runbook = RUNBOOK.read_text()
    anchors = {h.strip().lower() for h in re.findall(r"^## (\S+)", runbook, re.M)}
    alerts = [r for r in expressions.rules() if "alert" in r]
    assert len(alerts) >= 9
    for alert in alerts:
        notes = alert["annotations"]
        assert notes["summary"] and notes["description"], alert["alert"]
        assert notes["runbook_url"] == f"docs/operations/runbook.md#{alert['alert'].lower()}"
        assert alert["alert"].lower() in anchors, f"no runbook section for {alert['alert']}"


def test_every_alert_has_firing_and_not_firing_unit_tests() -> None:
    tests = (REPO / "monitoring" / "prometheus" / "tests").glob("*.yml")
    cases = [
        case
        for path in tests
        for test in expressions.yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]
    for alert in (r["alert"] for r in expressions.rules() if "alert" in r):
        mine = [c for c in cases if c["alertname"] == alert]
        assert any(c.get("exp_alerts") for c in mine), f"{alert} never tested firing"


def test_metric_names_are_found_in_expressions() -> None:
    expr = 'sum by (le) (rate(a_b_bucket{x="y"}[5m])) / on (env) group_left lumen:rec:rate5m > 0.5'
    assert expressions.metric_names(expr) == {"a_b_bucket", "lumen:rec:rate5m"}
    assert expressions.variable_query('label_values(up{env=~"$env"}, service)') == (
        'count by (service) (up{env=~"$env"})'
    )
