"""What a valid new order is: parsing gives a NewOrder or an InvalidOrder naming every field."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orderflow.domain.identifiers import MAX_ID_LENGTH as MAX_ID_LENGTH
from orderflow.domain.identifiers import id_problem, id_schema, pattern
from orderflow.domain.money import CURRENCIES, MAX_AMOUNT, is_currency
from orderflow.errors import OrderflowError

MAX_LINES = 100
MAX_QUANTITY = 10_000


@dataclass(frozen=True, slots=True)
class Line:
    sku: str
    quantity: int
    unit_price: int  # minor units

    @property
    def amount(self) -> int:
        return self.quantity * self.unit_price


@dataclass(frozen=True, slots=True)
class NewOrder:
    customer_id: str
    currency: str
    lines: tuple[Line, ...]
    payment_token: str

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.lines)


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str  # a JSON path such as "lines[0].quantity"
    message: str


class InvalidOrder(OrderflowError):
    """The request does not describe a valid order; ``errors`` names every bad field."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))


def _identifier(data: Mapping[str, Any], field: str, path: str, errors: list[FieldError]) -> str:
    value = data.get(field)
    problem = id_problem(value)
    if problem is not None:
        errors.append(FieldError(path, problem))
        return ""
    assert isinstance(value, str)
    return value


def whole_number(value: Any) -> int | None:
    """A JSON number that is an integer, as an int (JSON Schema counts 2.0 as one, and so does
    this); None for anything else. bool is an int in Python, but JSON true is no number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _integer(value: Any, path: str, low: int, high: int, errors: list[FieldError]) -> int:
    number = whole_number(value)
    if number is None:
        errors.append(FieldError(path, "required, an integer"))
        return 0
    if not low <= number <= high:
        errors.append(FieldError(path, f"must be from {low} to {high}"))
    return number


def sku_problem(sku: str) -> str | None:
    """Why ``sku`` cannot name a sku, or None. A '/' is reserved: the inventory keeps a line's
    reservation under 'sku/order id' beside the sku's level, which is keyed by the sku."""
    if (problem := id_problem(sku)) is not None:
        return problem
    if "/" in sku:
        return "must not contain '/'"
    return None


def _line(data: Any, path: str, errors: list[FieldError]) -> Line | None:
    if not isinstance(data, Mapping):
        errors.append(FieldError(path, "must be an object with sku, quantity and unit_price"))
        return None
    given = data.get("sku")
    problem = sku_problem(given) if isinstance(given, str) else "required, a non-empty string"
    sku = given if isinstance(given, str) and problem is None else ""
    if problem is not None:
        errors.append(FieldError(f"{path}.sku", problem))
    quantity = _integer(data.get("quantity"), f"{path}.quantity", 1, MAX_QUANTITY, errors)
    unit_price = _integer(data.get("unit_price"), f"{path}.unit_price", 0, MAX_AMOUNT, errors)
    return Line(sku, quantity, unit_price)


def parse_new_order(data: Any) -> NewOrder:
    """Validate a decoded JSON request body; raise InvalidOrder listing every problem."""
    if not isinstance(data, Mapping):
        raise InvalidOrder([FieldError("$", "the body must be a JSON object")])
    errors: list[FieldError] = []
    customer_id = _identifier(data, "customer_id", "customer_id", errors)
    currency = data.get("currency")
    if not isinstance(currency, str) or not is_currency(currency):
        errors.append(FieldError("currency", "required, an ISO 4217 code such as USD"))
    payment = data.get("payment")
    token = ""
    if not isinstance(payment, Mapping):
        errors.append(FieldError("payment", "required, an object with a token"))
    else:
        token = _identifier(payment, "token", "payment.token", errors)
    raw_lines = data.get("lines")
    lines: list[Line] = []
    if not isinstance(raw_lines, list) or not raw_lines:
        errors.append(FieldError("lines", "required, a non-empty array"))
    elif len(raw_lines) > MAX_LINES:
        errors.append(FieldError("lines", f"at most {MAX_LINES} lines"))
    else:
        seen: set[str] = set()
        for index, raw in enumerate(raw_lines):
            line = _line(raw, f"lines[{index}]", errors)
            if line is None:
                continue
            if line.sku and line.sku in seen:  # an invalid sku is reported once, as invalid
                errors.append(FieldError(f"lines[{index}].sku", "duplicate sku in this order"))
            seen.add(line.sku)
            lines.append(line)
    if not errors and sum(line.amount for line in lines) > MAX_AMOUNT:
        errors.append(FieldError("lines", f"the order total exceeds {MAX_AMOUNT}"))
    if errors:
        raise InvalidOrder(errors)
    assert isinstance(currency, str)
    return NewOrder(customer_id, currency, tuple(lines), token)


# A sku as sku_problem accepts it: an id (orderflow.domain.identifiers) without '/'.
SKU_PATTERN = pattern("/")


def new_order_schema() -> dict[str, Any]:
    """The JSON Schema of a body parse_new_order accepts, from the bounds it checks.

    Two rules are beyond JSON Schema and only the parser holds them: skus are unique within an
    order, and the total is at most MAX_AMOUNT. The first is described as far as a schema can:
    ``uniqueItems`` refuses identical lines, and ``x-unique-properties`` (an OpenAPI extension)
    names the property no two lines may share.
    """
    identifier = id_schema()
    line = {
        "type": "object",
        "required": ["sku", "quantity", "unit_price"],
        "properties": {
            "sku": id_schema(also_forbidden="/"),
            "quantity": {"type": "integer", "minimum": 1, "maximum": MAX_QUANTITY},
            "unit_price": {"type": "integer", "minimum": 0, "maximum": MAX_AMOUNT},
        },
    }
    return {
        "type": "object",
        "required": ["currency", "lines", "payment"],
        "properties": {
            "customer_id": {
                **identifier,
                "description": "required of services and admins; a customer's is its token's sub",
            },
            "currency": {"type": "string", "enum": sorted(CURRENCIES)},
            "lines": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_LINES,
                "items": line,
                # Identical lines are the one case of a repeated sku JSON Schema can refuse.
                "uniqueItems": True,
                "x-unique-properties": ["sku"],
                "description": "each sku at most once: two lines with the same sku are refused "
                "(422), whatever their quantities and prices",
            },
            "payment": {
                "type": "object",
                "required": ["token"],
                "properties": {"token": identifier},
            },
        },
    }
