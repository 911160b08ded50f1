"""A real Prometheus scrapes the running services and the exporter under a short load; every
PromQL expression of every dashboard panel, variable, recording rule and alert is evaluated
through its HTTP API. Each must parse and return data, and every metric it names must exist:
a panel on a metric nobody exports fails here."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from kafka import KafkaAdminClient, KafkaProducer
from lumen.v1 import inference_pb2, inference_pb2_grpc, profiles_pb2, profiles_pb2_grpc

from lumen_cli.platform import processes
from lumen_cli.platform import prometheus as prom
from lumen_cli.platform.services import http_ok
from monitoring import expressions
from shared.messages import SupportFeedback, SupportIntent
from shared.topics import SUPPORT_FEEDBACK, SUPPORT_INTENTS
from tests.support.stack import ServiceProcess, Stack, free_port, start_service, wait_for
from tests.support.trainer_process import start_trainer

WRITE_KEY = "lumen-dev-key"
RUN = uuid.uuid4().hex[:8]
# Per-model expressions need the inference server to serve real models: it runs on the small
# default models (the inference_real fixture), so they must return data like the rest.
PER_MODEL = {
    "alert LumenModelNotReady without its threshold",
    "recording rule lumen:inference_model_compute_seconds:p99_5m",
}


@pytest.fixture(scope="module")
def exporter(stack: Stack) -> Iterator[ServiceProcess]:
    port = free_port()
    service = start_service(
        "exporter",
        "services.exporter",
        {
            **stack.env(),
            "LUMEN_EXPORTER_PORT": str(port),
            "LUMEN_EXPORTER_KAFKA_POLL_SECONDS": "1",
            "LUMEN_EXPORTER_MONGO_POLL_SECONDS": "1",
            "LUMEN_EXPORTER_LAG_WINDOW": "5",
            "LUMEN_EXPORTER_BUSINESS_GROUP_ID": f"lumen-exporter-test-{RUN}",
        },
        ready=lambda: http_ok(f"http://127.0.0.1:{port}/metrics"),
        ports={"metrics": port},
    )
    yield service
    service.stop()
    # Leave no stopped consumer group behind in the shared test Kafka.
    admin = KafkaAdminClient(bootstrap_servers=[stack.kafka_bootstrap])
    try:
        admin.delete_groups([f"lumen-exporter-test-{RUN}"])
    finally:
        admin.close()


@pytest.fixture(scope="module")
def trainer(stack: Stack, models_registry: Path) -> Iterator[ServiceProcess]:
    """Scraped only: its triggers are out of reach, so it never trains into the registry."""
    service = start_trainer(
        stack,
        models_registry,
        stack.mongo_database,
        interval_seconds="1000000000",
        min_new_interactions="1000000000",
    )
    yield service
    service.stop()


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, promql: str) -> dict[str, Any]:
        """The API's answer; parse errors come back as status "error" (HTTP 400)."""
        data = urllib.parse.urlencode({"query": promql}).encode()
        request = urllib.request.Request(f"{self.url}/api/v1/query", data=data)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return dict(json.load(response))
        except urllib.error.HTTPError as exc:
            return dict(json.load(exc))

    def series(self, promql: str) -> list[dict[str, Any]]:
        answer = self.query(promql)
        assert answer["status"] == "success", answer
        return list(answer["data"]["result"])


@pytest.fixture(scope="module")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory,
    ingest: ServiceProcess,
    profiles: ServiceProcess,
    inference_real: ServiceProcess,
    exporter: ServiceProcess,
    trainer: ServiceProcess,
) -> Iterator[Prometheus]:
    port = free_port()
    targets = {
        "ingest": f"127.0.0.1:{ingest.ports['metrics']}",
        "profiles": f"127.0.0.1:{profiles.ports['web']}",
        "inference": f"127.0.0.1:{inference_real.ports['metrics']}",
        "exporter": f"127.0.0.1:{exporter.ports['metrics']}",
        "trainer": f"127.0.0.1:{trainer.ports['web']}",
        "prometheus": f"127.0.0.1:{port}",
    }
    component = f"prometheus-test-{RUN}"
    data: Path = tmp_path_factory.mktemp("prometheus")
    config = prom.render_config(targets, env_label="test", scrape_interval="1s")
    prom.start_process(config, data, "127.0.0.1", port, component, retention="1h")
    try:
        yield Prometheus(f"http://127.0.0.1:{port}")
    finally:
        processes.stop(component, grace_seconds=10)


def send_load(ingest: ServiceProcess, inference: ServiceProcess, stack: Stack, rounds: int) -> None:
    """A few seconds of mixed traffic: every event kind the dashboards count, one invalid event,
    one duplicate, classified support messages, and inference calls over gRPC."""
    url = f"http://127.0.0.1:{ingest.ports['http']}/v1/batch"
    producer = KafkaProducer(bootstrap_servers=[stack.kafka_bootstrap])
    with (
        httpx.Client(auth=(WRITE_KEY, ""), timeout=10) as client,
        grpc.insecure_channel(f"127.0.0.1:{inference.ports['grpc']}") as channel,
    ):
        stub = profiles_pb2_grpc.ProfileServiceStub(channel)
        recommend = inference_pb2_grpc.RecommendationServiceStub(channel)
        intents = inference_pb2_grpc.IntentServiceStub(channel)
        search = inference_pb2_grpc.SearchServiceStub(channel)
        for i in range(rounds):
            user = f"mon-{RUN}-{i}"
            rec = f"rec-{RUN}-{i}"
            batch = [
                {"type": "identify", "userId": user, "traits": {"plan": "pro"}},
                {"type": "page", "userId": user, "name": "Home"},
                {
                    "type": "track",
                    "userId": user,
                    "event": "Product Viewed",
                    "properties": {"itemId": "50", "category": "books"},
                },
                {
                    "type": "track",
                    "userId": user,
                    "event": "Product List Viewed",
                    "properties": {"recommendationId": rec, "category": "games"},
                },
                {
                    "type": "track",
                    "userId": user,
                    "event": "Product Clicked",
                    "properties": {"recommendationId": rec, "itemId": "7", "category": "games"},
                },
                {
                    "type": "track",
                    "userId": user,
                    "event": "Product Added",
                    "properties": {"itemId": "50", "category": "books"},
                },
                {
                    "type": "track",
                    "userId": user,
                    "event": "Order Completed",
                    "properties": {
                        "revenue": 19.5,
                        "currency": "EUR",
                        "products": [{"itemId": "50", "category": "books"}],
                    },
                },
                {
                    # Valid for ingest, refused by the profile updater (an item id must be a
                    # string or an integer): it goes to the DLQ and feeds the failure panels.
                    "type": "track",
                    "userId": user,
                    "event": "Item Viewed",
                    "properties": {"itemId": {"sku": "50"}},
                },
                {
                    "type": "track",
                    "userId": user,
                    "event": "Order Refunded",
                    "properties": {"revenue": 4.5, "currency": "EUR"},
                },
                {
                    "type": "track",
                    "userId": user,
                    "event": "Item Viewed",
                    "properties": {"itemId": "51"},
                    "messageId": f"dup-{RUN}",
                },
            ]
            assert client.post(url, json={"batch": batch}).status_code == 200
            client.post(url.replace("/batch", "/track"), json={"userId": user})  # invalid: no event
            # Classified messages in the format inference writes (services/inference/support.py),
            # standing in for a classifier the test platform has no model for.
            for intent, out_of_scope in (("refund", False), ("shipping", False), (None, True)):
                record = SupportIntent(
                    conversation_id=user,
                    route="support",
                    model_name="intent-classifier",
                    model_version="1",
                    classified_at="2026-01-01T00:00:00Z",
                    intent=intent,
                    confidence=0.9,
                    out_of_scope=out_of_scope,
                )
                producer.send(SUPPORT_INTENTS.name, key=user.encode(), value=record.encode())
            # An agent's feedback on a suggested reply: the support-assistant panels count it.
            feedback = SupportFeedback(
                conversation_id=user,
                message_id="m-1",
                action="accept",
                intent="refund",
                model_name="intent-classifier",
                model_version="1",
            )
            producer.send(SUPPORT_FEEDBACK.name, key=user.encode(), value=feedback.encode())
            # A profile may not be written yet (NOT_FOUND): that outcome is traffic too.
            with contextlib.suppress(grpc.RpcError):
                stub.GetProfile(profiles_pb2.GetProfileRequest(user_id=user), timeout=2)
            # The models are real: these answer, and feed the per-model series.
            recommend.Recommend(inference_pb2.RecommendRequest(user_id=user, k=3), timeout=10)
            intents.ClassifyIntent(
                inference_pb2.ClassifyIntentRequest(text="I want a refund"), timeout=10
            )
            search.SearchItems(
                inference_pb2.SearchItemsRequest(query="space adventure", k=3), timeout=10
            )
            time.sleep(0.5)
    producer.flush()
    producer.close()


def test_every_dashboard_and_rule_expression_returns_data(
    prometheus: Prometheus,
    ingest: ServiceProcess,
    inference_real: ServiceProcess,
    exporter: ServiceProcess,
    stack: Stack,
) -> None:
    # All six targets scraped.
    wait_for(lambda: len([s for s in prometheus.series("up == 1")]) == 6, timeout=30)
    group = f"lumen-exporter-test-{RUN}"
    # The exporter's consumer must own its partitions before the load, or it skips the events.
    wait_for(
        lambda: prometheus.series(f'lumen_kafka_consumergroup_members{{group="{group}"}} > 0'),
        timeout=60,
    )
    send_load(ingest, inference_real, stack, rounds=12)
    wait_for(
        lambda: prometheus.series('lumen_business_funnel_events_total{step="purchase"} > 0'),
        timeout=60,
    )
    time.sleep(5)  # a few more scrapes and rule evaluations

    all_expressions = expressions.dashboard_expressions() + expressions.rule_expressions()
    origins = {e.origin for e in all_expressions}
    assert origins >= PER_MODEL, PER_MODEL - origins
    assert any("Compute p99 by model version" in origin for origin in origins)
    assert len(all_expressions) > 50
    failures = []
    metric_names: set[str] = set()
    for expression in all_expressions:
        answer = prometheus.query(expression.promql)
        if answer["status"] != "success":
            failures.append(f"{expression.origin}: does not evaluate: {answer.get('error')}")
            continue
        if expression.must_return_data and not answer["data"]["result"]:
            failures.append(f"{expression.origin}: no data for {expression.promql}")
        metric_names |= expressions.metric_names(expression.promql)
    for name in sorted(metric_names):
        if not prometheus.series(f"count({name})"):
            failures.append(f"metric {name} is exported by nobody (or never recorded)")
    assert not failures, "\n".join(failures)


def test_a_panel_on_a_metric_nobody_exports_fails_the_check(prometheus: Prometheus) -> None:
    # The guard itself: the same checks applied to an expression on a made-up metric.
    promql = expressions.substitute("sum (rate(lumen_nobody_exports_this_total[$__rate_interval]))")
    answer = prometheus.query(promql)
    assert answer["status"] == "success" and answer["data"]["result"] == []
    assert expressions.metric_names(promql) == {"lumen_nobody_exports_this_total"}
    assert prometheus.series("count(lumen_nobody_exports_this_total)") == []
    assert prometheus.query("sum(rate(up[30s])")["status"] == "error"  # unparsable
