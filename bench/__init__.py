"""Benchmark scripts: each prints its figures and saves them under bench/results/."""
