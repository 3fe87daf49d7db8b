"""The root of orderflow's exceptions; each package adds its own small subclasses."""


class OrderflowError(Exception):
    """Base class of every error orderflow raises on purpose."""
