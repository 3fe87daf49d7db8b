"""Prometheus metrics, OpenTelemetry tracing and JSON logging."""
