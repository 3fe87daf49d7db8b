"""Commands to the inventory (topic inventory.commands, keyed by sku) and its events."""

from __future__ import annotations

from orderflow.schemas.envelope import Message


class ReserveStock(Message, namespace="orderflow.ReserveStock"):
    order_id: str
    sku: str
    quantity: int


class ReleaseStock(Message, namespace="orderflow.ReleaseStock"):
    order_id: str
    sku: str


class AdjustStock(Message, namespace="orderflow.AdjustStock"):
    sku: str
    delta: int
    reason: str


class StockLevelChanged(Message, namespace="orderflow.StockLevelChanged"):
    """On inventory.events whenever on-hand or reserved stock of a sku changes."""

    sku: str
    on_hand: int
    reserved: int
    version: int  # the offset of the inventory command that made the change
