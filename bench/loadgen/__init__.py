"""Multi-process load generator for gRPC and HTTP, closed loop or open loop.

Requests are serialised once, before the run, so every server under test receives the same
bytes and the client spends its CPU on sending, not on building messages. In open-loop mode
each latency is measured from the request's *scheduled* send time, so a stalled server is
charged for the requests it delayed (no coordinated omission).
"""

from bench.loadgen.core import GrpcWorkload, HttpWorkload, LoadResult, Workload, run_load

__all__ = ["GrpcWorkload", "HttpWorkload", "LoadResult", "Workload", "run_load"]
