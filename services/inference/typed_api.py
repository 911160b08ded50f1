"""gRPC adapters of the typed domain APIs (``lumen.v1``): thin, the cores do the work."""

from __future__ import annotations

import grpc
from lumen.v1 import inference_pb2 as pb
from lumen.v1 import inference_pb2_grpc as pb_grpc

from services.inference.grpc_common import deadline_of, rpc
from services.inference.intent import IntentClassifier, IntentResult
from services.inference.recommend import ReasonKind, Recommender, RecommendQuery, Source
from services.inference.search import ItemSearch

SOURCES = {
    Source.PERSONALISED: pb.RECOMMENDATION_SOURCE_PERSONALISED,
    Source.TRENDING: pb.RECOMMENDATION_SOURCE_TRENDING,
    Source.TRENDING_DEGRADED: pb.RECOMMENDATION_SOURCE_TRENDING_DEGRADED,
}
REASON_KINDS = {
    ReasonKind.COLLABORATIVE: pb.REASON_KIND_COLLABORATIVE,
    ReasonKind.CONTENT: pb.REASON_KIND_CONTENT,
    ReasonKind.TRENDING: pb.REASON_KIND_TRENDING,
    ReasonKind.POPULAR: pb.REASON_KIND_POPULAR,
}


def prediction(result: IntentResult) -> pb.IntentPrediction:
    return pb.IntentPrediction(
        intent=result.intent,
        confidence=result.confidence,
        out_of_scope=result.out_of_scope,
        alternatives=[pb.IntentScore(intent=i, confidence=c) for i, c in result.alternatives],
    )


class RecommendationService(pb_grpc.RecommendationServiceServicer):
    def __init__(self, recommender: Recommender) -> None:
        self.recommender = recommender

    @rpc("Recommend")
    async def Recommend(
        self, request: pb.RecommendRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecommendResponse:
        key = request.WhichOneof("key")
        query = RecommendQuery(
            key=getattr(request, key) if key else "",
            anonymous=key == "anonymous_id",
            k=request.k,
            exclude_seen=request.exclude_seen,
            categories=list(request.categories),
            context_items=list(request.context_item_ids),
        )
        result = await self.recommender.recommend(query, deadline_of(context))
        return pb.RecommendResponse(
            items=[
                pb.RecommendedItem(
                    item_id=i.item_id,
                    title=i.title,
                    score=i.score,
                    reason=i.reason,
                    categories=i.categories,
                    reason_kind=REASON_KINDS[i.reason_kind],
                )
                for i in result.items
            ],
            source=SOURCES[result.source],
            model_name=result.model_name,
            model_version=result.model_version,
            recommendation_id=result.recommendation_id,
        )


class IntentService(pb_grpc.IntentServiceServicer):
    def __init__(self, classifier: IntentClassifier) -> None:
        self.classifier = classifier

    @rpc("ClassifyIntent")
    async def ClassifyIntent(
        self, request: pb.ClassifyIntentRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClassifyIntentResponse:
        results, model = await self.classifier.classify(
            [request.text], request.top_k, deadline_of(context)
        )
        return pb.ClassifyIntentResponse(
            prediction=prediction(results[0]),
            model_name=model.name,
            model_version=str(model.version),
        )

    @rpc("ClassifyIntentBatch")
    async def ClassifyIntentBatch(
        self, request: pb.ClassifyIntentBatchRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClassifyIntentBatchResponse:
        results, model = await self.classifier.classify(
            list(request.texts), request.top_k, deadline_of(context)
        )
        return pb.ClassifyIntentBatchResponse(
            predictions=[prediction(r) for r in results],
            model_name=model.name,
            model_version=str(model.version),
        )


class SearchService(pb_grpc.SearchServiceServicer):
    def __init__(self, search: ItemSearch) -> None:
        self.search = search

    @rpc("SearchItems")
    async def SearchItems(
        self, request: pb.SearchItemsRequest, context: grpc.aio.ServicerContext
    ) -> pb.SearchItemsResponse:
        hits, model = await self.search.search(
            request.query, request.k, list(request.categories), deadline_of(context)
        )
        return pb.SearchItemsResponse(
            hits=[
                pb.SearchHit(
                    item_id=h.item_id, title=h.title, score=h.score, categories=h.categories
                )
                for h in hits
            ],
            model_name=model.name,
            model_version=str(model.version),
        )
