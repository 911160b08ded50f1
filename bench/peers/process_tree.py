"""Peak resident memory and CPU time of a process and its descendants (forked workers)."""

from __future__ import annotations

from pathlib import Path

from bench.common import cpu_seconds, peak_rss_bytes


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
        except OSError:
            continue
        children.setdefault(int(fields.get("PPid", "0").strip()), []).append(
            int(status.parent.name)
        )
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out


def tree_peak_rss_bytes(pid: int) -> int:
    """Sum of each live process's high-water mark (an upper bound of the tree's peak)."""
    total = 0
    for member in descendants(pid):
        try:
            total += peak_rss_bytes(member)
        except OSError:
            continue
    return total


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time used so far by a process and its live descendants."""
    total = 0.0
    for member in descendants(pid):
        try:
            total += cpu_seconds(member)
        except OSError:
            continue
    return total
