"""Prometheus exporter for what no single service knows: Kafka lag, MongoDB and business figures."""
