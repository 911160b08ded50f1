"""Who may call a gRPC server: a bearer token on every call (health and reflection stay open),
or client certificates (mTLS). Outside development one of them must be configured: a server
refuses to start open. Inference and insights both use it, each with its own settings prefix;
ingest's gRPC server takes its TLS credentials from here too."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

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


def authentication_problem(
    prefix: str,
    *,
    dev_mode: bool,
    auth_token: str | None,
    tls_cert_file: str | None,
    tls_key_file: str | None,
    tls_client_ca_file: str | None,
) -> str | None:
    """Why a server whose settings are read from ``prefix`` (e.g. ``LUMEN_INFERENCE_``) must
    not start with these values, or None when it may."""
    if dev_mode or auth_token:
        return None
    if tls_client_ca_file:
        if tls_cert_file and tls_key_file:
            return None
        return (
            f"{prefix}TLS_CLIENT_CA_FILE needs {prefix}TLS_CERT_FILE and "
            f"{prefix}TLS_KEY_FILE (mTLS runs over TLS)"
        )
    return (
        f"no authentication configured: set {prefix}AUTH_TOKEN (bearer token) or "
        f"{prefix}TLS_CLIENT_CA_FILE with a TLS certificate and key (mTLS); "
        "LUMEN_DEV_MODE=1 serves without them, for development only"
    )


def server_credentials(
    tls_cert_file: str | None, tls_key_file: str | None, tls_client_ca_file: str | None = None
) -> grpc.ServerCredentials | None:
    """TLS credentials of every Lumen gRPC server: when a certificate and key are configured,
    else None (plaintext); with a client CA, clients must present a certificate it signed
    (mTLS)."""
    if not (tls_cert_file and tls_key_file):
        return None
    key = Path(tls_key_file).read_bytes()
    return grpc.ssl_server_credentials(
        [(key, Path(tls_cert_file).read_bytes())],
        root_certificates=Path(tls_client_ca_file).read_bytes() if tls_client_ca_file else None,
        require_client_auth=bool(tls_client_ca_file),
    )
