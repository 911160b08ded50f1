"""Python client of Lumen's gRPC APIs.

from lumen_client import LumenClient

with LumenClient("127.0.0.1:50052", timeout=2.0, retries=4) as lumen:
    for item in lumen.recommend("1", k=5).items:
        print(item.title, item.reason)

AsyncLumenClient has the same methods as coroutines (``async with``, ``await``).
"""

from lumen_client._calls import event_message
from lumen_client.aio import AsyncLumenClient
from lumen_client.client import LumenClient
from lumen_client.errors import (
    DeadlineExceeded,
    InvalidArgument,
    LumenError,
    NotFound,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from lumen_client.retry import RetryPolicy
from lumen_client.types import to_dict

__version__ = "0.1.0"

__all__ = [
    "AsyncLumenClient",
    "DeadlineExceeded",
    "InvalidArgument",
    "LumenClient",
    "LumenError",
    "NotFound",
    "ResourceExhausted",
    "RetryPolicy",
    "Unauthenticated",
    "Unavailable",
    "__version__",
    "event_message",
    "to_dict",
]
