"""Every PromQL expression the monitoring config contains, ready to evaluate.

Used by the tests that run them against a real Prometheus: dashboard panel targets and
template-variable queries, recording rules and alerts. Grafana's variables are replaced with
test-time values; an alert written ``<expression> <comparison> <number>`` is also given without
its threshold (that part must return data; the whole alert legitimately returns nothing while
all is well).
"""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MONITORING = Path(__file__).resolve().parent
DASHBOARDS = MONITORING / "grafana" / "dashboards"
RULES = MONITORING / "prometheus" / "rules"
# PyYAML ships no type stubs: typed as Any.
yaml: Any = importlib.import_module("yaml")

# Grafana's built-in and Lumen's template variables -> values that select everything and give
# rate() windows enough 1-second samples.
GRAFANA_VARIABLES = {
    "$__rate_interval": "30s",
    "$__interval": "5s",
    "$__range": "5m",
    "$env": ".*",
    "$service": ".*",
    "$model": ".*",
}
_THRESHOLD = re.compile(r"^(?P<expr>.+?)\s*(?:>|<|>=|<=|==|!=)\s*(?P<value>-?[0-9.e+]+)\s*$", re.S)
_LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\)$")
_PROMQL_WORDS = frozenset(
    [
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "bool",
        "inf",
        "nan",
        "sum",
        "min",
        "max",
        "avg",
        "count",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
        "group",
    ]
)


@dataclass(frozen=True)
class Expression:
    origin: str  # where it comes from, for failure messages
    promql: str
    must_return_data: bool = True


def substitute(expr: str) -> str:
    for name in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, GRAFANA_VARIABLES[name])
    return expr


def variable_query(query: str) -> str:
    """A Grafana ``label_values(selector, label)`` as an instant PromQL query."""
    match = _LABEL_VALUES.match(query.strip())
    if not match:
        raise ValueError(f"unsupported variable query {query!r}")
    return f"count by ({match['label']}) ({match['selector'] or 'up'})"


def dashboard_expressions() -> list[Expression]:
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        for variable in dashboard.get("templating", {}).get("list", []):
            if variable["type"] == "query":
                found.append(
                    Expression(
                        f"{path.name} variable {variable['name']}",
                        substitute(variable_query(variable["query"])),
                    )
                )
        for panel in dashboard.get("panels", []):
            for target in panel.get("targets", []):
                found.append(
                    Expression(
                        f"{path.name} panel {panel['title']!r} {target['refId']}",
                        substitute(target["expr"]),
                    )
                )
    return found


def rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in sorted(RULES.glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def rule_expressions() -> list[Expression]:
    found = []
    for rule in rules():
        expr = " ".join(rule["expr"].split())
        if "record" in rule:
            found.append(Expression(f"recording rule {rule['record']}", expr))
            continue
        name = f"alert {rule['alert']}"
        # The whole alert must parse; it returns data only while it fires.
        found.append(Expression(name, expr, must_return_data=False))
        match = _THRESHOLD.match(expr)
        if match and " and " not in expr and " or " not in expr:
            found.append(Expression(f"{name} without its threshold", match["expr"]))
    return found


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (identifiers not used as functions or keywords)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range windows
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        word = match.group(0)
        following = text[match.end() :].lstrip()
        if word in _PROMQL_WORDS or following.startswith("("):
            continue
        if re.fullmatch(r"[0-9.e]+|[0-9]+[smhdwy]", word) or word in {"e"}:
            continue
        names.add(word)
    return names
