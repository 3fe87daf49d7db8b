"""The product catalog and the product read model, as pure functions over plain values.

Versions come from Kafka offsets, as in orderflow.domain.inventory: a catalog entry's version is
the offset of the catalog command that made it, and a product's stock version is the offset of
the inventory command behind its last stock level. A message whose version is below what a
value already holds is a stale redelivery and changes nothing; one whose version equals it is a
redelivery of the last change, whose outputs are sent again (they may not have left before a
crash; downstream, an equal version changes nothing).

A product document's version is ``(catalog_version + 1) + (stock_version + 1)`` (-1 meaning none
yet): each change raises exactly one of the two, so the sum grows with every change and is the
same whichever worker computes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from orderflow.domain.identifiers import NOT_BLANK
from orderflow.domain.orders import whole_number

PRODUCT_FIELDS = ("name", "description", "category", "price", "currency", "attributes", "tags")


class Freshness(Enum):
    NEW = "new"  # a change to apply
    REPEAT = "repeat"  # the last change again: send its outputs again, write nothing
    STALE = "stale"  # older than what is held: nothing to do


def freshness(held: int, incoming: int) -> Freshness:
    if incoming > held:
        return Freshness.NEW
    return Freshness.REPEAT if incoming == held else Freshness.STALE


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """A product as the catalog knows it; ``product`` is None once it is deleted."""

    product: dict[str, Any] | None
    version: int


def change_product(
    entry: CatalogEntry | None, product: dict[str, Any] | None, offset: int
) -> tuple[CatalogEntry | None, Freshness]:
    """Apply an upsert (``product``) or a delete (None) read at ``offset``.

    Returns the entry to keep and publish and how fresh the command was. Deleting a product
    the catalog has never seen (or has deleted) records nothing: there is nothing to remove.
    """
    held = entry.version if entry is not None else -1
    state = freshness(held, offset)
    if state is not Freshness.NEW:
        return entry, state
    if product is None and (entry is None or entry.product is None):
        return entry, Freshness.STALE
    return CatalogEntry(product, offset), Freshness.NEW


@dataclass(frozen=True, slots=True)
class ProductView:
    """What the product read model knows of one product id (sku): its catalog data and stock.

    Stock can be known before the product is (stock is adjusted first); such a view has no
    document until the catalog speaks of it.
    """

    product_id: str
    product: dict[str, Any] | None = None
    deleted: bool = False
    catalog_version: int = -1
    on_hand: int = 0
    reserved: int = 0
    stock_version: int = -1
    updated_at: str = ""

    @property
    def listed(self) -> bool:
        """Whether the catalog has spoken of this product (so it has a document)."""
        return self.catalog_version >= 0

    @property
    def version(self) -> int:
        # -1 (nothing yet) counts 0; offset n counts n + 1: a change to either raises the sum.
        return (self.catalog_version + 1) + (self.stock_version + 1)

    def document(self) -> dict[str, Any]:
        """The product document of the read side (the stores add their own fields)."""
        available = max(self.on_hand, 0)
        fields = self.product or {}
        return {
            "product_id": self.product_id,
            **{name: fields.get(name) for name in PRODUCT_FIELDS},
            "stock": {"on_hand": self.on_hand, "reserved": self.reserved, "available": available},
            "in_stock": available > 0,
            "deleted": self.deleted,
            "updated_at": self.updated_at,
            "version": self.version,
        }


def apply_catalog(
    view: ProductView, product: dict[str, Any] | None, version: int, at: str
) -> tuple[ProductView, Freshness]:
    """A catalog event: ProductUpserted (``product``) or ProductDeleted (None)."""
    state = freshness(view.catalog_version, version)
    if state is not Freshness.NEW:
        return view, state
    changed = replace(
        view,
        product=product if product is not None else view.product,
        deleted=product is None,
        catalog_version=version,
        updated_at=at,
    )
    return changed, state


def apply_stock(
    view: ProductView, on_hand: int, reserved: int, version: int, at: str
) -> tuple[ProductView, Freshness]:
    """A stock level of the product's sku."""
    state = freshness(view.stock_version, version)
    if state is not Freshness.NEW:
        return view, state
    changed = replace(
        view, on_hand=on_hand, reserved=reserved, stock_version=version, updated_at=at
    )
    return changed, state


PRODUCT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
CURRENCY = re.compile(r"[A-Z]{3}")
MAX_PRICE = 10**12
LIMITS = {"name": 200, "description": 5000, "category": 100}
MAX_TAGS = MAX_ATTRIBUTES = 50
MAX_TAG = MAX_ATTRIBUTE = 100
# An attribute name is a field name in the document stores: MongoDB refuses one that starts
# with "$" or holds a NUL, and reads "." as a path into a sub-document.
ATTRIBUTE_NAME = re.compile(r"[^$.\x00][^.\x00]*")


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str


class InvalidProduct(ValueError):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


def parse_product(product_id: str, body: Any) -> dict[str, Any]:
    """The product fields of a PUT body, or InvalidProduct listing every problem."""
    errors: list[FieldError] = []
    if not PRODUCT_ID.fullmatch(product_id):
        errors.append(
            FieldError("product_id", "letters, digits, '.', '_', ':' or '-', at most 100")
        )
    if not isinstance(body, dict):
        raise InvalidProduct([*errors, FieldError("body", "a JSON object")])
    for name, limit in LIMITS.items():
        value = body.get(name, "" if name == "description" else None)
        if (
            not isinstance(value, str)
            or len(value) > limit
            or (name != "description" and not value.strip())
        ):
            required = "" if name == "description" else "required, "
            errors.append(FieldError(name, f"{required}text of at most {limit} characters"))
    price, currency = whole_number(body.get("price")), body.get("currency")
    if price is None or not 0 <= price <= MAX_PRICE:
        errors.append(FieldError("price", "required, an integer of minor units (0 or more)"))
    if not isinstance(currency, str) or not CURRENCY.fullmatch(currency):
        errors.append(FieldError("currency", "required, an ISO 4217 code such as EUR"))
    attributes = body.get("attributes", {})
    if (
        not isinstance(attributes, dict)
        or len(attributes) > MAX_ATTRIBUTES
        or not all(
            isinstance(k, str) and isinstance(v, str) and 0 < len(k) <= MAX_ATTRIBUTE
            and len(v) <= MAX_ATTRIBUTE and ATTRIBUTE_NAME.fullmatch(k)
            for k, v in attributes.items()
        )
    ):  # fmt: skip
        errors.append(
            FieldError(
                "attributes",
                f"an object of at most {MAX_ATTRIBUTES} text values, named without a leading "
                "'$', a '.' or a NUL character",
            )
        )
    tags = body.get("tags", [])
    if (
        not isinstance(tags, list)
        or len(tags) > MAX_TAGS
        or not all(isinstance(t, str) and 0 < len(t.strip()) <= MAX_TAG for t in tags)
    ):
        errors.append(FieldError("tags", f"a list of at most {MAX_TAGS} non-empty words"))
    for unknown in sorted(set(body) - set(PRODUCT_FIELDS)):
        errors.append(FieldError(unknown, f"unknown field (known: {', '.join(PRODUCT_FIELDS)})"))
    if errors:
        raise InvalidProduct(errors)
    return {
        "name": body["name"].strip(),
        "description": body.get("description", ""),
        "category": body["category"].strip(),
        "price": price,
        "currency": currency,
        "attributes": dict(attributes),
        "tags": [t.strip() for t in tags],
    }


def product_schema() -> dict[str, Any]:
    """The JSON Schema of a body parse_product accepts, from the bounds it checks."""
    text = {name: {"type": "string", "maxLength": limit} for name, limit in LIMITS.items()}
    for name in ("name", "category"):
        text[name]["pattern"] = NOT_BLANK
    return {
        "type": "object",
        "required": ["name", "category", "price", "currency"],
        "additionalProperties": False,
        "properties": {
            **text,
            "price": {"type": "integer", "minimum": 0, "maximum": MAX_PRICE},
            "currency": {"type": "string", "pattern": f"^{CURRENCY.pattern}$"},
            "attributes": {
                "type": "object",
                "maxProperties": MAX_ATTRIBUTES,
                "propertyNames": {
                    "minLength": 1,
                    "maxLength": MAX_ATTRIBUTE,
                    "pattern": "^[^$.\\u0000][^.\\u0000]*$",
                },
                "additionalProperties": {"type": "string", "maxLength": MAX_ATTRIBUTE},
            },
            "tags": {
                "type": "array",
                "maxItems": MAX_TAGS,
                "items": {"type": "string", "maxLength": MAX_TAG, "pattern": NOT_BLANK},
            },
        },
    }


PRODUCT_ID_SCHEMA = {"type": "string", "maxLength": 100, "pattern": f"^{PRODUCT_ID.pattern}$"}
