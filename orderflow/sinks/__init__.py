"""Sinks: what moves data between Kafka and the stores around it. Imported by the worker."""
