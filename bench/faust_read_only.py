"""The profile updater's Faust app with an agent that does nothing: the ceiling Faust sets.

    LUMEN_PROFILES_EVENTS_TOPIC=<topic> .venv/bin/python -m bench.faust_read_only <count> <out.json>

Same app, topic and ``take_events`` batching as ``services/profiles/agents.py``; the agent
only counts. When ``count`` events went through it writes the rate and its own CPU time per
event to ``out.json`` and stops. The profiles benchmark runs it beside the bare aiokafka read
so that the worker's rate can be read against what Faust alone reaches on the same topic.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from services.profiles.app import faust_app
from services.profiles.settings import ProfilesSettings


def _report(out: Path, counted: int, wall: float, cpu: float) -> None:
    out.write_text(
        json.dumps(
            {
                "events": counted,
                "events_per_s": round(counted / wall) if wall > 0 else None,
                "cpu_us_per_event": round(cpu / counted * 1e6, 1) if counted else None,
            }
        )
    )


def main() -> None:
    total, out = int(sys.argv[1]), Path(sys.argv[2])
    # The clock starts at the first batch, so that batch is left out of the count: the rate
    # covers only events read while the clock ran.
    state: dict[str, Any] = {"seen": 0, "first": 0, "wall": 0.0, "cpu": 0.0}
    settings = ProfilesSettings()
    app, events_topic = faust_app(settings)

    @app.agent(events_topic)
    async def read_only(stream: Any) -> None:
        async for events in stream.take_events(settings.batch_size, within=settings.batch_seconds):
            if not state["seen"]:
                state.update(first=len(events), wall=time.perf_counter(), cpu=time.process_time())
            state["seen"] += len(events)
            if state["seen"] >= total:
                _report(
                    out,
                    state["seen"] - state["first"],
                    time.perf_counter() - state["wall"],
                    time.process_time() - state["cpu"],
                )
                os.kill(os.getpid(), signal.SIGTERM)  # Faust's own graceful stop
                return

    Path(settings.data_dir).parent.mkdir(parents=True, exist_ok=True)
    sys.argv = [sys.argv[0], "worker", "--loglevel", "warn"]
    app.main()


if __name__ == "__main__":
    main()
