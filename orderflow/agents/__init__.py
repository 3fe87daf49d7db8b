"""Faust agents, one module per bounded context. Imported by the worker at start."""
