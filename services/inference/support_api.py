"""gRPC adapter of the support assistant (``lumen.v1.SupportService``): thin, the assistant
does the work."""

from __future__ import annotations

import grpc
from lumen.v1 import support_pb2 as pb
from lumen.v1 import support_pb2_grpc as pb_grpc

from services.inference.assistant import Answer, Assistant, AssistRequest
from services.inference.errors import Unavailable
from services.inference.grpc_common import deadline_of, rpc
from services.inference.support import observe_suggestion

HANDOFF_REASONS = {
    None: pb.HANDOFF_REASON_UNSPECIFIED,
    "out_of_scope": pb.HANDOFF_REASON_OUT_OF_SCOPE,
    "low_confidence": pb.HANDOFF_REASON_LOW_CONFIDENCE,
    "no_answer": pb.HANDOFF_REASON_NO_ANSWER,
}


def response(answer: Answer, model_name: str, model_version: str) -> pb.SuggestReplyResponse:
    best = answer.hits[0] if answer.hits and not answer.handoff else None
    return pb.SuggestReplyResponse(
        reply=answer.reply,
        confidence=answer.confidence,
        handoff=answer.handoff,
        handoff_reason=HANDOFF_REASONS[answer.handoff_reason],
        article_id=best.article_id if best else "",
        article_title=best.title if best else "",
        passages=[
            pb.SuggestedPassage(
                article_id=h.article_id,
                title=h.title,
                text=h.text,
                score=h.score,
                intents=sorted(h.intents),
            )
            for h in answer.hits
        ],
        intent=answer.intent.intent,
        intent_confidence=answer.intent.confidence,
        out_of_scope=answer.intent.out_of_scope,
        context_messages=answer.context_messages,
        model_name=model_name,
        model_version=model_version,
        encoder=answer.encoder,
        knowledge_base=answer.knowledge_base,
    )


class SupportService(pb_grpc.SupportServiceServicer):
    def __init__(self, assistant: Assistant | None) -> None:
        self.assistant = assistant  # None: LUMEN_ASSIST_ENABLED is off

    @rpc("SuggestReply")
    async def SuggestReply(
        self, request: pb.SuggestReplyRequest, context: grpc.aio.ServicerContext
    ) -> pb.SuggestReplyResponse:
        if self.assistant is None:
            raise Unavailable("the support assistant is turned off (LUMEN_ASSIST_ENABLED)")
        ask = AssistRequest(
            request.text,
            request.conversation_id,
            list(request.context) if request.context else None,
        )
        answers, model = await self.assistant.answer([ask], deadline_of(context))
        observe_suggestion(answers[0], "grpc")
        return response(answers[0], model.name, str(model.version))
