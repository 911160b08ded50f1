"""Run the inference server: ``python -m services.inference``.

Start: load every model of the registry, then serve. Stop order on SIGTERM: report
NOT_SERVING, stop the support consumer, stop accepting calls and let in-flight ones finish
(bounded by LUMEN_INFERENCE_SHUTDOWN_GRACE_SECONDS), drain the batch queues, close clients.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from concurrent.futures import ThreadPoolExecutor

import grpc
import inference.grpc_service_pb2 as v2_pb
import inference.grpc_service_pb2_grpc as v2_grpc
from lumen.v1 import (
    inference_pb2,
    inference_pb2_grpc,
    profiles_pb2,
    profiles_pb2_grpc,
    support_pb2,
    support_pb2_grpc,
)

from services.inference.assistant import Assistant, KnowledgeBaseCache
from services.inference.auth import authentication_problem
from services.inference.breaker import CircuitBreaker
from services.inference.catalogue_watcher import CatalogueWatcher, LiveCatalogue
from services.inference.intent import IntentClassifier
from services.inference.labels import LabelCollector, LabelSettings
from services.inference.profile_api import ProfileService
from services.inference.recommend import Recommender
from services.inference.repository import ModelRepository
from services.inference.search import ItemSearch
from services.inference.settings import InferenceSettings
from services.inference.spans import instrument_pymongo, server_interceptors
from services.inference.store import ProfileStore, async_client
from services.inference.support import SupportRouter
from services.inference.support_api import SupportService
from services.inference.typed_api import IntentService, RecommendationService, SearchService
from services.inference.v2_api import InferenceService
from shared.gc_tuning import tune_for_serving
from shared.grpc_auth import BearerTokenInterceptor
from shared.grpc_auth import server_credentials as tls_server_credentials
from shared.grpc_parsing import MalformedRequestInterceptor
from shared.grpc_server import (
    DEFAULT_OPTIONS,
    HealthReporter,
    add_standard_services,
    bind,
    stop_event,
)
from shared.logging import configure_logging
from shared.metrics import register_build_info, serve_metrics
from shared.mongo import database, mongo_client
from shared.tracing import configure_tracing, shutdown_tracing

log = logging.getLogger("services.inference")

SERVICE_NAMES = (
    profiles_pb2.DESCRIPTOR.services_by_name["ProfileService"].full_name,
    inference_pb2.DESCRIPTOR.services_by_name["RecommendationService"].full_name,
    inference_pb2.DESCRIPTOR.services_by_name["IntentService"].full_name,
    inference_pb2.DESCRIPTOR.services_by_name["SearchService"].full_name,
    support_pb2.DESCRIPTOR.services_by_name["SupportService"].full_name,
    v2_pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name,
)


def server_credentials(settings: InferenceSettings) -> grpc.ServerCredentials | None:
    """TLS credentials when a certificate and key are configured, else None (plaintext);
    with a client CA, clients must present a certificate it signed (mTLS)."""
    return tls_server_credentials(
        settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file
    )


def server_options(settings: InferenceSettings) -> list[tuple[str, int]]:
    bounded = {"grpc.max_receive_message_length": settings.max_request_bytes}
    return [(key, bounded.get(key, value)) for key, value in DEFAULT_OPTIONS]


async def serve(settings: InferenceSettings) -> None:
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(settings.executor_threads, thread_name_prefix="onnxruntime")
    instrument_pymongo()  # before the clients: each copies the listeners registered so far
    client = mongo_client(settings.mongo)
    aclient = async_client(settings.mongo)
    store = ProfileStore(
        aclient,
        database(client, settings.mongo),
        settings.mongo.database,
        settings.profile_timeout_ms,
        CircuitBreaker(settings.profile_failures_to_degrade, settings.mongo_retry_seconds),
        settings.catalogue_full_refresh_seconds,
    )
    repository = ModelRepository(settings, executor)
    await repository.scan()
    log.info(
        "models loaded",
        extra={"fields": {"models": repository.names(), "repository": str(repository.root)}},
    )
    classifier = IntentClassifier(repository, settings)
    knowledge_base = KnowledgeBaseCache(
        database(client, settings.mongo)[settings.assist.collection], repository, settings
    )
    assistant = Assistant(classifier, knowledge_base, settings) if settings.assist.enabled else None
    live = LiveCatalogue() if settings.live_search_enabled else None

    interceptors: list[grpc.aio.ServerInterceptor] = [MalformedRequestInterceptor()]
    if settings.auth_token:
        interceptors.insert(0, BearerTokenInterceptor(settings.auth_token))
    # Outermost: a call refused by authentication or parsing is traced too.
    interceptors[:0] = server_interceptors()
    server = grpc.aio.server(options=server_options(settings), interceptors=interceptors)
    profiles_pb2_grpc.add_ProfileServiceServicer_to_server(
        ProfileService(database(client, settings.mongo)), server
    )
    inference_pb2_grpc.add_RecommendationServiceServicer_to_server(
        RecommendationService(Recommender(repository, store, settings)), server
    )
    inference_pb2_grpc.add_IntentServiceServicer_to_server(IntentService(classifier), server)
    inference_pb2_grpc.add_SearchServiceServicer_to_server(
        SearchService(ItemSearch(repository, store, settings, live)), server
    )
    support_pb2_grpc.add_SupportServiceServicer_to_server(SupportService(assistant), server)
    v2_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceService(repository), server)
    health = HealthReporter()
    add_standard_services(server, SERVICE_NAMES, health)
    bind(server, f"{settings.host}:{settings.grpc_port}", server_credentials(settings))
    serve_metrics(settings.host, settings.metrics_port)

    stopping = stop_event()
    background = [
        asyncio.create_task(repository.watch(stopping), name="registry-watch"),
        asyncio.create_task(
            store.refresh_forever(settings.trends_refresh_seconds, stopping), name="trends"
        ),
    ]
    if assistant is not None:
        background.append(
            asyncio.create_task(knowledge_base.refresh_forever(stopping), name="knowledge-base")
        )
    if live is not None:
        watcher = CatalogueWatcher(aclient[settings.mongo.database], repository, settings, live)
        background.append(asyncio.create_task(watcher.run(stopping), name="catalogue-watch"))
    router = (
        SupportRouter(classifier, settings, loop, assistant)
        if settings.support_consumer_enabled
        else None
    )
    label_settings = LabelSettings()
    labels = (
        LabelCollector(
            database(client, settings.mongo),
            settings.kafka,
            label_settings,
            settings.max_text_chars,
        )
        if label_settings.enabled
        else None
    )
    await server.start()
    if router is not None:
        router.start()
    if labels is not None:
        labels.start()
    # Everything loaded so far (models included) lives as long as the process: keep it out
    # of GC pauses.
    tune_for_serving(settings.gc.gen0_threshold)
    await health.set(SERVICE_NAMES, serving=True)
    log.info(
        "inference listening",
        extra={
            "fields": {
                "grpc": f"{settings.host}:{settings.grpc_port}",
                "metrics": f"{settings.host}:{settings.metrics_port}",
            }
        },
    )
    await stopping.wait()
    log.info("stopping: draining in-flight calls and batch queues")
    await health.set(SERVICE_NAMES, serving=False)
    if router is not None:
        await asyncio.to_thread(router.close)
    if labels is not None:
        await asyncio.to_thread(labels.close)
    await server.stop(settings.shutdown_grace_seconds)
    await asyncio.gather(*background, return_exceptions=True)
    await repository.close()
    executor.shutdown(wait=True)
    await aclient.close()
    client.close()
    shutdown_tracing()
    log.info("inference stopped")


def main() -> None:
    settings = InferenceSettings()
    configure_logging("inference", settings.log)
    configure_tracing("inference")
    problem = authentication_problem(settings)
    if problem is not None:
        log.error("refusing to start: %s", problem, extra={"fields": {"reason": problem}})
        sys.exit(2)
    if settings.mode.dev_mode and not settings.auth_token and not settings.tls_client_ca_file:
        log.warning("development mode: serving without authentication")
    register_build_info("inference")
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
