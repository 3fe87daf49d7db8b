"""What the shared plumbing needs of the running app.

Agents, sinks, the dead-letter sender and the health checks take a :class:`Runtime` rather
than the whole Faust app, so each states what it uses; :class:`orderflow.app.OrderflowApp` is
the one in production, and a test can hand over any object that has these.
"""

from __future__ import annotations

from typing import Protocol

from faust.types import TopicT

from orderflow.resilience.breaker import CircuitBreaker
from orderflow.resilience.in_flight import InFlight
from orderflow.settings import Settings


class Runtime(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def in_flight(self) -> InFlight:
        """The events being processed (what a rebalance waits for)."""

    @property
    def held_topics(self) -> set[str]:
        """Topics a sink holds back on purpose while its store is down."""

    @property
    def rebalancing(self) -> bool: ...

    @property
    def should_stop(self) -> bool: ...

    def breaker(self, name: str) -> CircuitBreaker:
        """The circuit breaker called ``name``, shared by everything that calls one service."""

    def waited(self, handler: str, seconds: float) -> None:
        """A message of ``handler`` was handled ``seconds`` after it was produced."""

    def dead_letter_topic(self, origin: str) -> TopicT:
        """The DLQ twin of the topic called ``origin``."""
