"""What an identifier is: the rule every id keeps, in a request body, a token or a URL path.

An id (a customer, an order, a payment token, a sku) is 1 to MAX_ID_LENGTH characters, not all
whitespace, and holds no control character (Unicode category Cc: U+0000 to U+001F and U+007F
to U+009F) and no line or paragraph separator (U+2028, U+2029). Ids end up in PostgreSQL rows
(which refuse a NUL), Kafka keys, document stores, Location headers and log lines (where a line
break forges a line).

:func:`pattern` says the same in a regular expression that JSON Schema (ECMA-262), Python's
``re`` and the Rust ``regex`` crate read alike: explicit ranges only, no ``\\s`` or ``\\p``
classes, whose members differ between them.
"""

from __future__ import annotations

import re
from typing import Any

MAX_ID_LENGTH = 100

# Never in an id: control characters, and the line and paragraph separators.
FORBIDDEN = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
# Whitespace besides those (what str.isspace() and str.strip() also count as whitespace).
BLANK = r" \u00a0\u1680\u2000-\u200a\u202f\u205f\u3000"


def pattern(also_forbidden: str = "") -> str:
    """A regular expression of an id: no forbidden character (nor any of ``also_forbidden``,
    already escaped for a character class), and at least one that is not whitespace."""
    allowed = f"[^{FORBIDDEN}{also_forbidden}]"
    visible = f"[^{FORBIDDEN}{BLANK}{also_forbidden}]"
    return f"^{allowed}*{visible}{allowed}*$"


# Text that is not all whitespace as str.strip() sees it, in the same portable form.
NOT_BLANK = rf"[^\t\n\v\f\r\x1c-\x1f\x85\u2028\u2029{BLANK}]"

ID_PATTERN = pattern()
_ID = re.compile(ID_PATTERN.removeprefix("^").removesuffix("$"))


def id_problem(value: Any, max_length: int = MAX_ID_LENGTH) -> str | None:
    """Why ``value`` cannot be an id, or None."""
    if not isinstance(value, str) or not value.strip():
        return "required, a non-empty string"
    if len(value) > max_length:
        return f"at most {max_length} characters"
    if not _ID.fullmatch(value):
        return "no control characters or line breaks"
    return None


def id_schema(max_length: int = MAX_ID_LENGTH, also_forbidden: str = "") -> dict[str, Any]:
    """The JSON Schema of an id, as id_problem checks it."""
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": max_length,
        "pattern": pattern(also_forbidden),
    }
