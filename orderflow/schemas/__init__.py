"""Every command and event on orderflow's topics, as versioned faust.Record types.

Records serialize as JSON objects whose ``__faust.ns`` names the type (``orderflow.<Name>``),
so a topic can carry several types and old payloads stay readable: a field added later must
have a default, and ``schema_version`` says which shape the producer wrote.
"""

from orderflow.schemas.catalog import (
    DeleteProduct,
    ProductDeleted,
    ProductUpserted,
    UpsertProduct,
)
from orderflow.schemas.envelope import Message, caused_by, envelope, output_id
from orderflow.schemas.inventory import AdjustStock, ReleaseStock, ReserveStock, StockLevelChanged
from orderflow.schemas.orders import (
    CancelOrder,
    OrderCancelled,
    OrderConfirmed,
    OrderLine,
    OrderPlaced,
    OrderRejected,
    PlaceOrder,
)
from orderflow.schemas.payments import AuthorizePayment, VoidPayment
from orderflow.schemas.replies import (
    DeadlineExpired,
    PaymentAuthorized,
    PaymentDeclined,
    PaymentUnavailable,
    StockRejected,
    StockReserved,
)

ALL_RECORDS: tuple[type[Message], ...] = (
    PlaceOrder,
    CancelOrder,
    OrderPlaced,
    OrderConfirmed,
    OrderRejected,
    OrderCancelled,
    ReserveStock,
    ReleaseStock,
    AdjustStock,
    StockLevelChanged,
    StockReserved,
    StockRejected,
    PaymentAuthorized,
    PaymentDeclined,
    PaymentUnavailable,
    DeadlineExpired,
    AuthorizePayment,
    VoidPayment,
    UpsertProduct,
    DeleteProduct,
    ProductUpserted,
    ProductDeleted,
)

__all__ = [
    "ALL_RECORDS",
    "AdjustStock",
    "AuthorizePayment",
    "CancelOrder",
    "DeadlineExpired",
    "DeleteProduct",
    "Message",
    "OrderCancelled",
    "OrderConfirmed",
    "OrderLine",
    "OrderPlaced",
    "OrderRejected",
    "PaymentAuthorized",
    "PaymentDeclined",
    "PaymentUnavailable",
    "PlaceOrder",
    "ProductDeleted",
    "ProductUpserted",
    "ReleaseStock",
    "ReserveStock",
    "StockLevelChanged",
    "StockRejected",
    "StockReserved",
    "UpsertProduct",
    "VoidPayment",
    "caused_by",
    "envelope",
    "output_id",
]
