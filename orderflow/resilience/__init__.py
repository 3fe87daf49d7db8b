"""Retries with backoff and jitter, circuit breakers, and dead-letter topics."""
