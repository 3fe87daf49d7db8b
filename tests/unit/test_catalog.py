"""The product catalog and the product read model: freshness by version, documents, validation."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderflow import schemas
from orderflow.domain.catalog import (
    PRODUCT_FIELDS,
    CatalogEntry,
    FieldError,
    Freshness,
    InvalidProduct,
    ProductView,
    apply_catalog,
    apply_stock,
    change_product,
    freshness,
    parse_product,
    product_schema,
)
from orderflow.schemas.codec import decode


def product(name: str = "Kettle", price: int = 2_999, **changes: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": "Boils water.",
        "category": "kitchen",
        "price": price,
        "currency": "EUR",
        "attributes": {"colour": "red"},
        "tags": ["steel", "electric"],
        **changes,
    }


def at(second: int) -> str:
    return f"2025-01-01T00:{second // 60:02d}:{second % 60:02d}.000000+00:00"


# --- freshness -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("held", "incoming", "expected"),
    [
        (-1, 0, Freshness.NEW),
        (3, 4, Freshness.NEW),
        (3, 100, Freshness.NEW),
        (3, 3, Freshness.REPEAT),
        (-1, -1, Freshness.REPEAT),
        (3, 2, Freshness.STALE),
        (3, -1, Freshness.STALE),
    ],
)
def test_freshness_compares_the_incoming_version_with_the_held_one(
    held: int, incoming: int, expected: Freshness
) -> None:
    assert freshness(held, incoming) is expected


# --- change_product (the catalog) ------------------------------------------------------------


def test_a_new_product_is_recorded_at_its_offset() -> None:
    entry, state = change_product(None, product(), 7)
    assert state is Freshness.NEW
    assert entry == CatalogEntry(product(), 7)


def test_an_upsert_at_a_newer_offset_replaces_the_product() -> None:
    first = CatalogEntry(product(), 7)
    entry, state = change_product(first, product(price=1_000), 9)
    assert state is Freshness.NEW
    assert entry == CatalogEntry(product(price=1_000), 9)


def test_the_same_offset_again_is_a_repeat_that_keeps_the_entry() -> None:
    first = CatalogEntry(product(), 7)
    entry, state = change_product(first, product(price=1), 7)
    assert state is Freshness.REPEAT
    assert entry is first


def test_an_older_offset_is_stale_and_keeps_the_entry() -> None:
    first = CatalogEntry(product(), 7)
    entry, state = change_product(first, product(price=1), 3)
    assert state is Freshness.STALE
    assert entry is first
    _, state = change_product(first, None, 6)
    assert state is Freshness.STALE


def test_a_delete_keeps_an_entry_without_product_at_its_offset() -> None:
    entry, state = change_product(CatalogEntry(product(), 7), None, 8)
    assert state is Freshness.NEW
    assert entry == CatalogEntry(None, 8)


def test_deleting_an_unknown_product_records_nothing() -> None:
    entry, state = change_product(None, None, 5)
    assert state is Freshness.STALE
    assert entry is None


def test_deleting_a_deleted_product_records_nothing() -> None:
    deleted = CatalogEntry(None, 8)
    entry, state = change_product(deleted, None, 12)
    assert state is Freshness.STALE
    assert entry is deleted


def test_a_deleted_product_can_be_created_again() -> None:
    entry, state = change_product(CatalogEntry(None, 8), product(), 12)
    assert state is Freshness.NEW
    assert entry == CatalogEntry(product(), 12)


# --- ProductView -----------------------------------------------------------------------------


def test_a_view_without_catalog_data_is_not_listed_and_has_version_zero() -> None:
    view = ProductView("SKU-1")
    assert not view.listed
    assert view.version == 0


def test_a_view_known_only_by_its_stock_is_not_listed() -> None:
    view, _ = apply_stock(ProductView("SKU-1"), 5, 1, 40, at(1))
    assert not view.listed
    assert view.version == 41


@pytest.mark.parametrize(
    ("catalog_version", "stock_version", "expected"),
    [(-1, -1, 0), (0, -1, 1), (-1, 0, 1), (0, 0, 2), (10, 3, 15), (4, -1, 5)],
)
def test_the_version_counts_each_offset_plus_one(
    catalog_version: int, stock_version: int, expected: int
) -> None:
    view = ProductView("SKU-1", catalog_version=catalog_version, stock_version=stock_version)
    assert view.version == expected
    assert view.listed is (catalog_version >= 0)


def test_the_document_holds_the_product_fields_and_the_stock() -> None:
    view = ProductView(
        "SKU-1",
        product=product(),
        catalog_version=3,
        on_hand=5,
        reserved=2,
        stock_version=8,
        updated_at=at(4),
    )
    assert view.document() == {
        "product_id": "SKU-1",
        "name": "Kettle",
        "description": "Boils water.",
        "category": "kitchen",
        "price": 2_999,
        "currency": "EUR",
        "attributes": {"colour": "red"},
        "tags": ["steel", "electric"],
        "stock": {"on_hand": 5, "reserved": 2, "available": 5},
        "in_stock": True,
        "deleted": False,
        "updated_at": at(4),
        "version": 4 + 9,
    }


def test_negative_stock_is_shown_as_nothing_available() -> None:
    document = ProductView("SKU-1", product=product(), catalog_version=0, on_hand=-3).document()
    assert document["stock"] == {"on_hand": -3, "reserved": 0, "available": 0}
    assert document["in_stock"] is False


def test_a_document_without_product_data_has_every_product_field_empty() -> None:
    document = ProductView("SKU-1", on_hand=2).document()
    assert all(document[name] is None for name in PRODUCT_FIELDS)
    assert document["in_stock"] is True
    assert document["version"] == 0


def test_the_document_of_a_partial_product_leaves_missing_fields_empty() -> None:
    view = ProductView("SKU-1", product={"name": "Kettle"}, catalog_version=0)
    document = view.document()
    assert document["name"] == "Kettle"
    assert document["price"] is None
    assert document["tags"] is None


# --- apply_catalog / apply_stock -------------------------------------------------------------


def test_an_upsert_fills_the_view() -> None:
    view, state = apply_catalog(ProductView("SKU-1"), product(), 4, at(1))
    assert state is Freshness.NEW
    assert view == ProductView("SKU-1", product=product(), catalog_version=4, updated_at=at(1))
    assert view.listed


def test_a_repeated_or_older_catalog_event_changes_nothing() -> None:
    view, _ = apply_catalog(ProductView("SKU-1"), product(), 4, at(1))
    again, state = apply_catalog(view, product(price=1), 4, at(2))
    assert state is Freshness.REPEAT
    assert again is view
    older, state = apply_catalog(view, None, 3, at(3))
    assert state is Freshness.STALE
    assert older is view


def test_a_delete_keeps_the_last_product_fields_and_marks_the_view_deleted() -> None:
    view, _ = apply_catalog(ProductView("SKU-1"), product(), 4, at(1))
    deleted, state = apply_catalog(view, None, 6, at(2))
    assert state is Freshness.NEW
    assert deleted.product == product()
    assert deleted.deleted
    assert deleted.catalog_version == 6
    assert deleted.updated_at == at(2)
    document = deleted.document()
    assert document["deleted"] is True
    assert document["name"] == "Kettle"
    assert document["version"] == 7


def test_an_upsert_after_a_delete_undeletes_the_product() -> None:
    view, _ = apply_catalog(ProductView("SKU-1"), product(), 4, at(1))
    view, _ = apply_catalog(view, None, 6, at(2))
    view, state = apply_catalog(view, product(name="Kettle 2"), 9, at(3))
    assert state is Freshness.NEW
    assert not view.deleted
    assert view.product == product(name="Kettle 2")
    assert view.catalog_version == 9


def test_a_catalog_event_leaves_the_stock_alone() -> None:
    view, _ = apply_stock(ProductView("SKU-1"), 5, 2, 10, at(1))
    view, _ = apply_catalog(view, product(), 0, at(2))
    assert (view.on_hand, view.reserved, view.stock_version) == (5, 2, 10)
    assert view.version == 1 + 11


def test_a_stock_level_sets_the_stock_and_its_version() -> None:
    view, state = apply_stock(ProductView("SKU-1"), 5, 2, 10, at(1))
    assert state is Freshness.NEW
    assert view == ProductView("SKU-1", on_hand=5, reserved=2, stock_version=10, updated_at=at(1))


def test_a_repeated_or_older_stock_level_changes_nothing() -> None:
    view, _ = apply_stock(ProductView("SKU-1"), 5, 2, 10, at(1))
    again, state = apply_stock(view, 1, 1, 10, at(2))
    assert state is Freshness.REPEAT
    assert again is view
    older, state = apply_stock(view, 1, 1, 9, at(3))
    assert state is Freshness.STALE
    assert older is view


def test_a_stock_level_leaves_the_catalog_data_alone() -> None:
    view, _ = apply_catalog(ProductView("SKU-1"), product(), 4, at(1))
    view, _ = apply_catalog(view, None, 5, at(2))
    view, _ = apply_stock(view, 3, 0, 0, at(3))
    assert view.product == product()
    assert view.deleted
    assert view.catalog_version == 5
    assert view.updated_at == at(3)


# --- delivery in any order, with redeliveries ------------------------------------------------

CatalogEvent = tuple[dict[str, Any] | None, int]  # (product or None for a delete, version)
StockEvent = tuple[int, int, int]  # (on_hand, reserved, version)


def _increasing(size: int) -> st.SearchStrategy[list[int]]:
    """Strictly increasing versions (offsets) from 0 up."""
    gaps = st.lists(st.integers(1, 5), min_size=size, max_size=size)
    return gaps.map(lambda steps: [sum(steps[: i + 1]) - 1 for i in range(len(steps))])


@st.composite
def catalog_events(draw: st.DrawFn) -> list[CatalogEvent]:
    size = draw(st.integers(0, 6))
    versions = draw(_increasing(size))
    products = st.one_of(
        st.none(), st.builds(product, st.sampled_from(["A", "B", "C"]), st.integers(0, 99))
    )
    return [(draw(products), version) for version in versions]


@st.composite
def stock_events(draw: st.DrawFn) -> list[StockEvent]:
    size = draw(st.integers(0, 6))
    versions = draw(_increasing(size))
    return [(draw(st.integers(-2, 9)), draw(st.integers(0, 4)), v) for v in versions]


Delivery = tuple[str, int]  # (source, index of the event in that source)


def _apply(
    view: ProductView,
    delivery: Delivery,
    catalog: list[CatalogEvent],
    stock: list[StockEvent],
    stamp: dict[Delivery, str],
) -> tuple[ProductView, Freshness]:
    source, index = delivery
    if source == "catalog":
        body, version = catalog[index]
        return apply_catalog(view, body, version, stamp[delivery])
    on_hand, reserved, version = stock[index]
    return apply_stock(view, on_hand, reserved, version, stamp[delivery])


@settings(max_examples=300, deadline=None)
@given(catalog=catalog_events(), stock=stock_events(), data=st.data())
def test_any_interleaving_with_redeliveries_gives_the_view_of_each_event_once(
    catalog: list[CatalogEvent], stock: list[StockEvent], data: st.DataObject
) -> None:
    sources = ["catalog"] * len(catalog) + ["stock"] * len(stock)
    order = data.draw(st.permutations(sources), label="interleaving")
    seen = {"catalog": 0, "stock": 0}
    interleaving: list[Delivery] = []
    for source in order:  # each source keeps its own order
        interleaving.append((source, seen[source]))
        seen[source] += 1
    # The time a message carries is its own (a redelivery carries the same one).
    stamp = {delivery: at(i) for i, delivery in enumerate(interleaving)}

    deliveries: list[Delivery] = []
    for i, delivery in enumerate(interleaving):
        deliveries.append(delivery)
        if data.draw(st.booleans(), label=f"again right after {i}"):
            deliveries.append(delivery)
        if i > 0 and data.draw(st.booleans(), label=f"an older one after {i}"):
            deliveries.append(interleaving[data.draw(st.integers(0, i - 1))])

    view = ProductView("SKU-1")
    last_version = view.version
    for delivery in deliveries:
        view, state = _apply(view, delivery, catalog, stock, stamp)
        if state is not Freshness.STALE:
            version = view.document()["version"]
            assert version >= last_version, f"version fell from {last_version} to {version}"
            last_version = version

    once = ProductView("SKU-1")
    for delivery in interleaving:
        once, state = _apply(once, delivery, catalog, stock, stamp)
        assert state is Freshness.NEW
    assert view == once
    assert view.document() == once.document()

    # Each source on its own, in its order, gives the same view but for the time of change.
    separately = ProductView("SKU-1")
    for body, version in catalog:
        separately, _ = apply_catalog(separately, body, version, "")
    for on_hand, reserved, version in stock:
        separately, _ = apply_stock(separately, on_hand, reserved, version, "")
    assert replace(view, updated_at="") == separately
    expected_version = (catalog[-1][1] + 1 if catalog else 0) + (stock[-1][2] + 1 if stock else 0)
    assert view.version == expected_version


# --- parse_product ---------------------------------------------------------------------------


def _fields(error: InvalidProduct) -> list[str]:
    return [e.field for e in error.errors]


def test_a_valid_body_gives_the_normalised_product() -> None:
    body = {
        "name": "  Kettle ",
        "category": " kitchen",
        "price": 2_999,
        "currency": "EUR",
        "tags": [" steel ", "electric"],
        "attributes": {"colour": "red"},
    }
    assert parse_product("SKU-1.a_b:c", body) == {
        "name": "Kettle",
        "description": "",
        "category": "kitchen",
        "price": 2_999,
        "currency": "EUR",
        "attributes": {"colour": "red"},
        "tags": ["steel", "electric"],
    }


def test_the_optional_fields_default_to_empty() -> None:
    body = {"name": "Kettle", "category": "kitchen", "price": 0, "currency": "USD"}
    parsed = parse_product("SKU-1", body)
    assert parsed["description"] == ""
    assert parsed["attributes"] == {}
    assert parsed["tags"] == []
    assert parsed["price"] == 0


def test_a_full_body_is_kept_as_it_is() -> None:
    assert parse_product("SKU-1", product()) == product()


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("name", {"name": None}),
        ("name", {"name": "   "}),
        ("name", {"name": "x" * 201}),
        ("name", {"name": 5}),
        ("description", {"description": None}),
        ("description", {"description": "x" * 5_001}),
        ("category", {"category": ""}),
        ("category", {"category": "x" * 101}),
        ("price", {"price": -1}),
        ("price", {"price": True}),
        ("price", {"price": 12.5}),
        ("price", {"price": "100"}),
        ("price", {"price": 10**12 + 1}),
        ("price", {"price": None}),
        ("currency", {"currency": "eur"}),
        ("currency", {"currency": "EURO"}),
        ("currency", {"currency": None}),
        ("tags", {"tags": "steel"}),
        ("tags", {"tags": ["steel", ""]}),
        ("tags", {"tags": ["   "]}),
        ("tags", {"tags": [1]}),
        ("tags", {"tags": ["t"] * 51}),
        ("tags", {"tags": ["x" * 101]}),
        ("attributes", {"attributes": {"colour": 1}}),
        ("attributes", {"attributes": {"colour": None}}),
        ("attributes", {"attributes": ["colour"]}),
        ("attributes", {"attributes": {"": "red"}}),
        ("attributes", {"attributes": {"colour": "x" * 101}}),
        ("attributes", {"attributes": {f"k{i}": "v" for i in range(51)}}),
        ("attributes", {"attributes": {"$": "x"}}),
        ("attributes", {"attributes": {"$set": "x"}}),
        ("attributes", {"attributes": {"colour.name": "red"}}),
        ("attributes", {"attributes": {"col\x00our": "red"}}),
        ("colour", {"colour": "red"}),
    ],
)
def test_each_invalid_field_is_named(field: str, changes: dict[str, Any]) -> None:
    body = product(**changes)
    if "name" in changes and changes["name"] is None:
        del body["name"]  # missing altogether
    with pytest.raises(InvalidProduct) as raised:
        parse_product("SKU-1", body)
    assert _fields(raised.value) == [field]
    assert all(isinstance(e, FieldError) and e.message for e in raised.value.errors)
    assert field in str(raised.value)


def test_a_missing_name_is_reported_as_required() -> None:
    body = product()
    del body["name"]
    with pytest.raises(InvalidProduct) as raised:
        parse_product("SKU-1", body)
    assert raised.value.errors == [FieldError("name", "required, text of at most 200 characters")]


@pytest.mark.parametrize("product_id", ["a b", "", "-SKU", ".x", "x" * 101, "sku/1", "é"])
def test_a_bad_product_id_is_named(product_id: str) -> None:
    with pytest.raises(InvalidProduct) as raised:
        parse_product(product_id, product())
    assert _fields(raised.value) == ["product_id"]


@pytest.mark.parametrize("product_id", ["a", "A1", "sku-1", "x" * 100, "a.b_c:d-e"])
def test_good_product_ids_are_accepted(product_id: str) -> None:
    assert parse_product(product_id, product())["name"] == "Kettle"


@pytest.mark.parametrize("body", [None, [], "Kettle", 3])
def test_a_body_that_is_not_an_object_is_refused(body: Any) -> None:
    with pytest.raises(InvalidProduct) as raised:
        parse_product("a b", body)
    assert _fields(raised.value) == ["product_id", "body"]


def test_every_problem_is_reported_at_once() -> None:
    body = {
        "category": "",
        "price": -5,
        "currency": "eur",
        "tags": "steel",
        "attributes": {"colour": 3},
        "colour": "red",
    }
    with pytest.raises(InvalidProduct) as raised:
        parse_product("a b", body)
    assert _fields(raised.value) == [
        "product_id",
        "name",
        "category",
        "price",
        "currency",
        "attributes",
        "tags",
        "colour",
    ]


STORE_FIELD_NAMES = ["$", "$set", "a.b", ".", "a\x00", "colour", "colour$", "größe", "a-b c"]


@pytest.mark.parametrize("name", STORE_FIELD_NAMES)
def test_the_schema_and_the_parser_agree_on_attribute_names(name: str) -> None:
    body = product(attributes={name: "x"})
    try:
        parse_product("SKU-1", body)
        accepted = True
    except InvalidProduct:
        accepted = False
    assert accepted == (not name.startswith("$") and "." not in name and "\x00" not in name)
    assert jsonschema_rs.validator_for(product_schema()).is_valid(body) == accepted


@pytest.mark.parametrize(
    "changes",
    [{}, {"description": ""}, {"description": "   "}, {"tags": []}, {"attributes": {}}],
)
def test_what_the_door_accepts_the_catalog_consumer_decodes(changes: dict[str, Any]) -> None:
    """The records' own rules (a blank required text, say) never refuse a parsed product."""
    body = {**product(), **changes}
    if "description" not in changes:
        del body["description"]  # optional: absent is the empty text
    parsed = parse_product("SKU-1", body)
    for record in (
        schemas.UpsertProduct(**schemas.envelope("SKU-1"), product_id="SKU-1", **parsed),
        schemas.ProductUpserted(
            **schemas.envelope("SKU-1"), product_id="SKU-1", version=1, **parsed
        ),
    ):
        assert decode(record.dumps()) == record
