"""Channels that deliver customer notifications (see ``orderflow.agents.notifications``)."""
