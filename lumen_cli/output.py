"""What every talking command shares: exit codes, JSON or human output, the client."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from lumen_cli.settings import CliSettings
from lumen_client import LumenClient, LumenError, NotFound, RetryPolicy
from lumen_client.errors import DeadlineExceeded, InvalidArgument, Unavailable

# Exit codes (documented in docs/quickstart.md): 2 is argparse's own for bad usage.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_NOT_FOUND = 4


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def client(args: argparse.Namespace) -> LumenClient:
    settings = CliSettings()
    return LumenClient(
        getattr(args, "target", None) or settings.inference_target,
        timeout=settings.cli_timeout_seconds,
        retries=RetryPolicy(max_attempts=3, initial_backoff=0.2, max_backoff=1.0),
        ingest_target=settings.ingest_grpc_target,
        write_key=settings.write_key,
        token=settings.inference_token,
    )


def exit_code_for(error: LumenError) -> int:
    if isinstance(error, (Unavailable, DeadlineExceeded)):
        return EXIT_UNREACHABLE
    if isinstance(error, NotFound):
        return EXIT_NOT_FOUND
    if isinstance(error, InvalidArgument):
        return EXIT_USAGE
    return EXIT_FAILED


def guarded(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn client errors into one line on stderr, what to do, and a meaningful exit code."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except LumenError as error:
            code = exit_code_for(error)
            hint = ""
            if code == EXIT_UNREACHABLE:
                hint = " (is the platform up? `lumen status`; start it with `make up`)"
            print(f"lumen {args.command}: {error.details}{hint}", file=sys.stderr)
            if getattr(args, "json", False):
                print_json({"error": error.code.name, "details": error.details})
            return code

    return run
