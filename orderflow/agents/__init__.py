"""Faust agents, one module per bounded context, each with a register(app) that declares them."""
