"""orderflow: event-driven order processing on Kafka with Faust."""

__version__ = "0.1.0"
