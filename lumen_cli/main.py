"""The ``lumen`` command line: run the local platform and talk to it.

Each sub-command lives in its own module under ``lumen_cli/commands`` and registers itself
through ``add_parser``. Exit codes: 0 success, 1 the command failed, 2 wrong usage,
3 a platform component is missing or down.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import metadata

from lumen_cli.commands import (
    assist_cmds,
    doctor_cmd,
    forecast_cmd,
    model_cmds,
    platform_cmds,
    query_cmds,
    seed_cmd,
    tail_cmd,
    trace_cmd,
)
from lumen_cli.platform.processes import PlatformError

EXIT_FAILED = 1
EXIT_PLATFORM = 3


def installed_version() -> str:
    """The version of the installed distribution (pyproject's), not a second copy of it."""
    try:
        return metadata.version("lumen")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lumen",
        description="Lumen: real-time profiles, recommendations, intents and search from events.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {installed_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (
        platform_cmds,
        seed_cmd,
        query_cmds,
        forecast_cmd,
        tail_cmd,
        trace_cmd,
        doctor_cmd,
        model_cmds,
        assist_cmds,
    ):
        module.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PlatformError as exc:
        print(f"lumen {args.command}: {exc}", file=sys.stderr)
        return EXIT_PLATFORM
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
