"""JSON encodings of the domain's table values (they are plain dataclasses, not Faust models)."""

from __future__ import annotations

from typing import Any

import orjson

from orderflow.domain.catalog import CatalogEntry, ProductView
from orderflow.domain.inventory import Reservation, ReservationStatus, StockLevel
from orderflow.domain.orders import Line, NewOrder
from orderflow.domain.payments import Payment, PaymentStatus
from orderflow.domain.saga import SagaState, Status, Transition


def _default(value: Any) -> Any:
    if isinstance(value, frozenset):
        return sorted(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def encode(value: Any) -> bytes:
    """orjson encodes dataclasses, enums and tuples natively; sets become sorted lists."""
    return orjson.dumps(value, default=_default)


def decode_json(raw: bytes) -> Any:
    return orjson.loads(raw)


def decode_saga(raw: bytes) -> SagaState:
    data = orjson.loads(raw)
    order = data["order"]
    return SagaState(
        order_id=data["order_id"],
        order=NewOrder(
            customer_id=order["customer_id"],
            currency=order["currency"],
            lines=tuple(Line(**line) for line in order["lines"]),
            payment_token=order["payment_token"],
        ),
        status=Status(data["status"]),
        awaiting=frozenset(data["awaiting"]),
        deadline=data["deadline"],
        version=data["version"],
        history=tuple(
            Transition(t["at"], Status(t["status"]), t["cause"]) for t in data["history"]
        ),
        seen=frozenset(data["seen"]),
        payment_id=data["payment_id"],
        reason=data["reason"],
        detail=data["detail"],
        outcome_version=data["outcome_version"],
        positions=data.get("positions", {}),
        payment_attempts=data.get("payment_attempts", 0),
        payment_retry_pending=data.get("payment_retry_pending", False),
        step_asks=data.get("step_asks", 1),
    )


def decode_inventory_record(raw: bytes) -> StockLevel | Reservation:
    """A record of the inventory table: a sku's level, or a reservation (it has a status)."""
    data = orjson.loads(raw)
    if "status" in data:
        return Reservation(data["quantity"], ReservationStatus(data["status"]), data["offset"])
    return StockLevel(
        on_hand=data["on_hand"],
        reserved=data["reserved"],
        offset=data["offset"],
        recent_adjustments=tuple(data.get("recent_adjustments", ())),
    )


def decode_catalog_entry(raw: bytes) -> CatalogEntry:
    return CatalogEntry(**orjson.loads(raw))


def decode_product_view(raw: bytes) -> ProductView:
    return ProductView(**orjson.loads(raw))


def decode_payment(raw: bytes) -> Payment:
    data = orjson.loads(raw)
    return Payment(PaymentStatus(data["status"]), data["payment_id"], data["reason"])
