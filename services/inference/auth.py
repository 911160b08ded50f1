"""Who may call the inference server: a bearer token on every gRPC call (health and
reflection stay open), or client certificates (mTLS). Outside development one of them
must be configured: the server refuses to start open. The interceptor and the check are
shared with the other gRPC services (shared/grpc_auth.py)."""

from __future__ import annotations

from services.inference.settings import InferenceSettings
from shared import grpc_auth
from shared.grpc_auth import OPEN_PREFIXES, BearerTokenInterceptor

__all__ = ["OPEN_PREFIXES", "BearerTokenInterceptor", "authentication_problem"]


def authentication_problem(settings: InferenceSettings) -> str | None:
    """Why the server must not start with these settings, or None when it may."""
    return grpc_auth.authentication_problem(
        "LUMEN_INFERENCE_",
        dev_mode=settings.mode.dev_mode,
        auth_token=settings.auth_token,
        tls_cert_file=settings.tls_cert_file,
        tls_key_file=settings.tls_key_file,
        tls_client_ca_file=settings.tls_client_ca_file,
    )
