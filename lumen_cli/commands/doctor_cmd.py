"""``lumen doctor``: check the machine and say what to fix."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from lumen_cli.doctor import OK, PROBLEM, WARN, run_checks
from lumen_cli.output import EXIT_FAILED, EXIT_OK, add_json_flag, print_json

MARKS = {OK: "ok     ", WARN: "warn   ", PROBLEM: "PROBLEM"}


def add_parsers(sub: Any) -> None:
    doctor = sub.add_parser(
        "doctor",
        help="check Python, Java, Maven, caches, ports, disk and models; say what to fix",
        description="Exit code 0 when nothing is missing, 1 when something must be fixed.",
    )
    add_json_flag(doctor)
    doctor.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    checks = run_checks()
    problems = [c for c in checks if c.status == PROBLEM]
    if args.json:
        print_json({"ok": not problems, "checks": [dataclasses.asdict(c) for c in checks]})
    else:
        for check in checks:
            print(f"{MARKS[check.status]}  {check.name:<11} {check.detail}")
            if check.fix and check.status != OK:
                print(f"{'':<9}  {'':<11} fix: {check.fix}")
        if problems:
            names = ", ".join(c.name for c in problems)
            print(f"\n{len(problems)} problem(s) to fix: {names}")
        else:
            print("\nEverything Lumen needs is here.")
    return EXIT_FAILED if problems else EXIT_OK
