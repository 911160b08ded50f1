"""Who may call the inference server: a bearer token on every gRPC call (health and
reflection stay open), or client certificates (mTLS). Outside development one of them
must be configured: the server refuses to start open."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from services.inference.settings import InferenceSettings

OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def _deny(code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    async def abort(request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(code, message)

    return grpc.unary_unary_rpc_method_handler(abort)


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        if details.method.startswith(OPEN_PREFIXES):
            return await continuation(details)
        metadata = dict(details.invocation_metadata or ())
        sent = metadata.get("authorization", "")
        sent_bytes = sent.encode() if isinstance(sent, str) else bytes(sent)
        if not hmac.compare_digest(sent_bytes, self._expected):
            return _deny(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        return await continuation(details)


def authentication_problem(settings: InferenceSettings) -> str | None:
    """Why the server must not start with these settings, or None when it may."""
    if settings.mode.dev_mode or settings.auth_token:
        return None
    if settings.tls_client_ca_file:
        if settings.tls_cert_file and settings.tls_key_file:
            return None
        return (
            "LUMEN_INFERENCE_TLS_CLIENT_CA_FILE needs LUMEN_INFERENCE_TLS_CERT_FILE and "
            "LUMEN_INFERENCE_TLS_KEY_FILE (mTLS runs over TLS)"
        )
    return (
        "no authentication configured: set LUMEN_INFERENCE_AUTH_TOKEN (bearer token) or "
        "LUMEN_INFERENCE_TLS_CLIENT_CA_FILE with a TLS certificate and key (mTLS); "
        "LUMEN_DEV_MODE=1 serves without them, for development only"
    )
