"""Sinks: what moves data between Kafka and the stores around it (the outbox relay, the
projections' sink agents), each module with a register(app)."""
