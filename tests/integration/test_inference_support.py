"""A message put on support.messages comes out classified and routed on support.intents."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from shared.messages import SupportIntent, SupportMessage
from shared.topics import SUPPORT_INTENTS, SUPPORT_MESSAGES
from tests.integration.inference_helpers import metric, start_inference, tiny_registry
from tests.support.stack import ServiceProcess, Stack, wait_for


@pytest.fixture(scope="module")
def server(stack: Stack) -> Iterator[ServiceProcess]:
    service = start_inference(stack, tiny_registry())
    yield service
    service.stop()


def test_support_messages_come_out_classified_and_routed(
    stack: Stack, server: ServiceProcess
) -> None:
    conversation = f"conv-{uuid.uuid4().hex[:8]}"
    # Partitions assigned by hand and positioned at their ends now: no group join to wait for
    # (a join racing the topic's metadata could leave the consumer with no partition at all).
    consumer = KafkaConsumer(bootstrap_servers=stack.kafka_bootstrap, consumer_timeout_ms=500)
    partitions = wait_for(lambda: consumer.partitions_for_topic(SUPPORT_INTENTS.name), timeout=20)
    assert isinstance(partitions, set)
    assigned = [TopicPartition(SUPPORT_INTENTS.name, p) for p in sorted(partitions)]
    consumer.assign(assigned)
    consumer.seek_to_end()
    for partition in assigned:
        consumer.position(partition)  # resolve the end offsets before anything is sent
    producer = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
    messages = [("m-1", "i want a refund"), ("m-2", "what is the weather"), ("m-3", "")]
    received: dict[str, SupportIntent] = {}

    def send_and_collect() -> bool:
        # The router joins its group asynchronously ("latest"): resend until it answers.
        if not received:
            for message_id, text in messages:
                message = SupportMessage(
                    conversation_id=conversation, message_id=message_id, text=text
                )
                # m-2 as a producer that predates schemaVersion writes it: read as version 1.
                value = (
                    message.encode()
                    if message_id != "m-2"
                    else orjson.dumps(message.model_dump(by_alias=True, exclude={"schema_version"}))
                )
                producer.send(SUPPORT_MESSAGES.name, key=conversation.encode(), value=value)
            producer.flush()
        for batch in consumer.poll(timeout_ms=500).values():
            for record in batch:
                out = SupportIntent.decode(record.value)
                if out.conversation_id == conversation:
                    assert record.key == conversation.encode()
                    assert orjson.loads(record.value)["schemaVersion"] == 1
                    received[str(out.message_id)] = out
        return len(received) == 3

    try:
        wait_for(send_and_collect, timeout=45, interval=0.5)
    finally:
        consumer.close()
        producer.close()
    refund, weather, empty = received["m-1"], received["m-2"], received["m-3"]
    assert (refund.intent, refund.out_of_scope, refund.route) == ("refund", False, "payments")
    assert refund.model_name == "intent-classifier" and refund.model_version == "1"
    assert weather.out_of_scope is True and weather.route == "human-triage"
    assert empty.error == "no text" and empty.route == "human-triage"
    assert metric(server, "lumen_inference_support_messages_total", outcome="classified") >= 2
