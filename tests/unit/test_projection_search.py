"""Search requests as Elasticsearch queries (products and orders), and answers as JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from multidict import MultiDict

from orderflow.projections.search import (
    CATEGORY_FACETS,
    ORDER_SORTS,
    PRODUCT_SORTS,
    InvalidSearch,
    Search,
    category_facets,
    hits,
    order_search,
    product_search,
)


def filters(search: Search) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = search.body["query"]["bool"]["filter"]
    return result


def product_errors(query: Mapping[str, str]) -> list[dict[str, str]]:
    with pytest.raises(InvalidSearch) as raised:
        product_search(query)
    return raised.value.errors


def order_errors(query: Mapping[str, str]) -> list[dict[str, str]]:
    with pytest.raises(InvalidSearch) as raised:
        order_search(query)
    return raised.value.errors


def fields(errors: list[dict[str, str]]) -> list[str]:
    assert all(set(e) == {"field", "message"} and e["message"] for e in errors)
    return [e["field"] for e in errors]


# --- products --------------------------------------------------------------------------------


def test_no_parameters_match_every_listed_product_sorted_by_name() -> None:
    search = product_search({})
    assert search == Search(
        {
            "query": {
                "bool": {"must": [{"match_all": {}}], "filter": [{"term": {"deleted": False}}]}
            },
            "sort": [{"name.sort": "asc"}, {"product_id": "asc"}],
            "from": 0,
            "size": 20,
            "track_total_hits": True,
            "version": True,
            "aggs": {"category": {"terms": {"field": "category", "size": CATEGORY_FACETS}}},
        },
        1,
        20,
    )
    assert "post_filter" not in search.body


def test_words_must_all_appear_across_name_tags_and_description() -> None:
    search = product_search({"q": "  red kettle "})
    assert search.body["query"]["bool"]["must"] == [
        {
            "multi_match": {
                "query": "red kettle",
                "type": "cross_fields",
                "fields": ["name^3", "tags^2", "description"],
                "operator": "and",
            }
        }
    ]
    assert search.body["sort"] == PRODUCT_SORTS["relevance"]


def test_blank_words_are_no_words() -> None:
    search = product_search({"q": "   "})
    assert search.body["query"]["bool"]["must"] == [{"match_all": {}}]
    assert search.body["sort"] == PRODUCT_SORTS["name"]


def test_words_are_at_most_200_characters() -> None:
    assert fields(product_errors({"q": "x" * 201})) == ["q"]
    assert product_search({"q": "x" * 200}).body["query"]["bool"]["must"][0]["multi_match"]


@pytest.mark.parametrize("sort", list(PRODUCT_SORTS))
def test_each_product_sort_can_be_asked_for(sort: str) -> None:
    assert product_search({"sort": sort, "q": "kettle"}).body["sort"] == PRODUCT_SORTS[sort]
    assert product_search({"sort": sort}).body["sort"] == PRODUCT_SORTS[sort]


def test_an_unknown_product_sort_is_an_error() -> None:
    errors = product_errors({"sort": "cheapest"})
    assert fields(errors) == ["sort"]
    assert "relevance" in errors[0]["message"]


def test_deleted_products_are_always_filtered_out() -> None:
    for query in ({}, {"q": "kettle"}, {"in_stock": "true", "min_price": "1"}):
        assert {"term": {"deleted": False}} in filters(product_search(query))


def test_categories_go_into_the_post_filter_so_the_facets_ignore_them() -> None:
    search = product_search({"category": "kitchen"})
    assert search.body["post_filter"] == {"terms": {"category": ["kitchen"]}}
    assert not any("category" in str(f) for f in filters(search))
    assert search.body["aggs"] == {
        "category": {"terms": {"field": "category", "size": CATEGORY_FACETS}}
    }


def test_categories_may_be_comma_separated() -> None:
    search = product_search({"category": "kitchen, garden,,  "})
    assert search.body["post_filter"] == {"terms": {"category": ["kitchen", "garden"]}}


def test_categories_may_be_repeated() -> None:
    query = MultiDict([("category", "kitchen"), ("category", "garden,toys"), ("q", "red")])
    search = product_search(query)
    assert search.body["post_filter"] == {"terms": {"category": ["kitchen", "garden", "toys"]}}
    assert search.body["query"]["bool"]["must"][0]["multi_match"]["query"] == "red"


def test_blank_categories_filter_nothing() -> None:
    assert "post_filter" not in product_search({"category": " , "}).body
    assert "post_filter" not in product_search(MultiDict([("category", "")])).body


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"min_price": "100"}, {"gte": 100}),
        ({"max_price": "500"}, {"lte": 500}),
        ({"min_price": "100", "max_price": "500"}, {"gte": 100, "lte": 500}),
        ({"min_price": "0", "max_price": "0"}, {"gte": 0, "lte": 0}),
        ({"min_price": "7", "max_price": "7"}, {"gte": 7, "lte": 7}),
    ],
)
def test_a_price_range_filters_the_price(query: dict[str, str], expected: dict[str, int]) -> None:
    assert filters(product_search(query)) == [
        {"term": {"deleted": False}},
        {"range": {"price": expected}},
    ]


def test_no_price_bound_means_no_range() -> None:
    assert not any("range" in f for f in filters(product_search({"min_price": " "})))


def test_a_minimum_above_the_maximum_is_an_error() -> None:
    errors = product_errors({"min_price": "500", "max_price": "100"})
    assert errors == [{"field": "max_price", "message": "at least min_price"}]


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", "1e3", "9" * 19])
def test_a_price_bound_must_be_a_whole_number_of_zero_or_more(value: str) -> None:
    assert fields(product_errors({"min_price": value})) == ["min_price"]
    assert fields(product_errors({"max_price": value})) == ["max_price"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("false", False), ("0", False)],
)
def test_in_stock_filters_on_the_stock(value: str, expected: bool) -> None:
    assert filters(product_search({"in_stock": value})) == [
        {"term": {"deleted": False}},
        {"term": {"in_stock": expected}},
    ]


def test_in_stock_must_be_true_or_false() -> None:
    assert product_errors({"in_stock": "yes"}) == [
        {"field": "in_stock", "message": "true or false"}
    ]


@pytest.mark.parametrize(
    ("page", "size", "start"),
    [("1", "20", 0), ("2", "20", 20), ("3", "7", 14), ("100", "100", 9_900), ("1", "100", 0)],
)
def test_page_and_size_give_from_and_size(page: str, size: str, start: int) -> None:
    search = product_search({"page": page, "size": size})
    assert (search.body["from"], search.body["size"]) == (start, int(size))
    assert (search.page, search.size) == (int(page), int(size))


def test_the_page_defaults_to_the_first_of_20() -> None:
    search = product_search({"page": "4"})
    assert (search.body["from"], search.body["size"], search.page, search.size) == (60, 20, 4, 20)


def test_a_page_is_at_most_100_results() -> None:
    errors = product_errors({"size": "101"})
    assert errors == [{"field": "size", "message": "at most 100"}]


def test_results_beyond_the_result_window_are_refused() -> None:
    assert fields(product_errors({"page": "101", "size": "100"})) == ["page"]
    assert fields(product_errors({"page": "501"})) == ["page"]
    assert product_search({"page": "500"}).body["from"] == 9_980


@pytest.mark.parametrize(("name", "value"), [("page", "0"), ("size", "0"), ("page", "x")])
def test_page_and_size_start_at_one(name: str, value: str) -> None:
    assert fields(product_errors({name: value})) == [name]


def test_every_product_problem_is_reported_together() -> None:
    query = MultiDict(
        [
            ("q", "x" * 300),
            ("min_price", "-3"),
            ("in_stock", "maybe"),
            ("sort", "random"),
            ("size", "1000"),
        ]
    )
    errors = product_errors(query)
    assert fields(errors) == ["q", "min_price", "in_stock", "sort", "size"]


# --- orders ----------------------------------------------------------------------------------


def test_no_parameters_give_every_order_newest_first() -> None:
    search = order_search({})
    assert search == Search(
        {
            "query": {"bool": {"filter": []}},
            "sort": [{"placed_at": "desc"}, {"order_id": "asc"}],
            "from": 0,
            "size": 20,
            "track_total_hits": True,
            "version": True,
        },
        1,
        20,
    )


def test_a_customer_is_a_term() -> None:
    assert filters(order_search({"customer": " c-1 "})) == [{"term": {"customer_id": "c-1"}}]


def test_a_customer_is_at_most_100_characters() -> None:
    assert fields(order_errors({"customer": "c" * 101})) == ["customer"]


def test_statuses_are_upper_cased() -> None:
    query = MultiDict([("status", "pending,Confirmed"), ("status", "rejected")])
    assert filters(order_search(query)) == [
        {"terms": {"status": ["PENDING", "CONFIRMED", "REJECTED"]}}
    ]
    assert filters(order_search({"status": "cancelled"})) == [{"terms": {"status": ["CANCELLED"]}}]


def test_an_unknown_status_is_an_error() -> None:
    errors = order_errors({"status": "pending,shipped"})
    assert fields(errors) == ["status"]
    assert "CONFIRMED" in errors[0]["message"]


def test_skus_are_terms() -> None:
    query = MultiDict([("sku", "SKU-1, SKU-2"), ("sku", "SKU-3")])
    assert filters(order_search(query)) == [{"terms": {"skus": ["SKU-1", "SKU-2", "SKU-3"]}}]
    assert filters(order_search({"sku": "SKU-1"})) == [{"terms": {"skus": ["SKU-1"]}}]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"min_total": "100"}, {"gte": 100}),
        ({"max_total": "900"}, {"lte": 900}),
        ({"min_total": "100", "max_total": "900"}, {"gte": 100, "lte": 900}),
    ],
)
def test_a_total_range_filters_the_total(query: dict[str, str], expected: dict[str, int]) -> None:
    assert filters(order_search(query)) == [{"range": {"total": expected}}]


def test_a_minimum_total_above_the_maximum_is_an_error() -> None:
    errors = order_errors({"min_total": "900", "max_total": "100"})
    assert errors == [{"field": "max_total", "message": "at least min_total"}]
    assert fields(order_errors({"min_total": "-1"})) == ["min_total"]


@pytest.mark.parametrize(
    ("value", "start", "end"),
    [
        # A date alone is the whole day: from its start to the next day's start (exclusive).
        ("2026-11-21", "2026-11-21T00:00:00+00:00", "2026-11-22T00:00:00+00:00"),
        ("2026-11-21T10:00:00Z", "2026-11-21T10:00:00+00:00", "2026-11-21T10:00:00+00:00"),
        ("2026-11-21T10:00:00", "2026-11-21T10:00:00+00:00", "2026-11-21T10:00:00+00:00"),
        ("2026-11-21T10:00:00+02:00", "2026-11-21T10:00:00+02:00", "2026-11-21T10:00:00+02:00"),
        (" 2026-11-21T10:00:00.5Z ", "2026-11-21T10:00:00.500000+00:00",
         "2026-11-21T10:00:00.500000+00:00"),
    ],
)  # fmt: skip
def test_from_and_to_bound_the_time_placed(value: str, start: str, end: str) -> None:
    assert filters(order_search({"from": value})) == [{"range": {"placed_at": {"gte": start}}}]
    assert filters(order_search({"to": value})) == [{"range": {"placed_at": {"lt": end}}}]


def test_from_and_to_together_make_one_range() -> None:
    search = order_search({"from": "2026-11-01", "to": "2026-11-30"})
    assert filters(search) == [
        {
            "range": {
                "placed_at": {"gte": "2026-11-01T00:00:00+00:00", "lt": "2026-12-01T00:00:00+00:00"}
            }
        }
    ]


def test_to_must_be_later_than_from() -> None:
    errors = order_errors({"from": "2026-11-21T10:00:00Z", "to": "2026-11-21T09:00:00Z"})
    assert errors == [{"field": "to", "message": "later than from"}]


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01", "21/11/2026", "2026-11-21T25:00"])
def test_an_invalid_date_is_an_error(value: str) -> None:
    errors = order_errors({"from": value})
    assert fields(errors) == ["from"]
    assert "ISO 8601" in errors[0]["message"]
    assert fields(order_errors({"to": value})) == ["to"]


@pytest.mark.parametrize("sort", list(ORDER_SORTS))
def test_each_order_sort_can_be_asked_for(sort: str) -> None:
    assert order_search({"sort": sort}).body["sort"] == ORDER_SORTS[sort]


@pytest.mark.parametrize("sort", ["relevance", "price", "NEWEST"])
def test_an_unknown_order_sort_is_an_error(sort: str) -> None:
    assert fields(order_errors({"sort": sort})) == ["sort"]


def test_all_order_filters_together() -> None:
    search = order_search(
        {
            "customer": "c-1",
            "status": "confirmed",
            "sku": "SKU-1",
            "min_total": "10",
            "from": "2026-11-21",
            "sort": "-total",
            "page": "2",
            "size": "50",
        }
    )
    assert filters(search) == [
        {"range": {"total": {"gte": 10}}},
        {"range": {"placed_at": {"gte": "2026-11-21T00:00:00+00:00"}}},
        {"term": {"customer_id": "c-1"}},
        {"terms": {"status": ["CONFIRMED"]}},
        {"terms": {"skus": ["SKU-1"]}},
    ]
    assert search.body["sort"] == ORDER_SORTS["-total"]
    assert (search.body["from"], search.body["size"], search.page) == (50, 50, 2)


def test_order_paging_has_the_same_limits() -> None:
    assert fields(order_errors({"size": "101"})) == ["size"]
    assert fields(order_errors({"page": "10001", "size": "1"})) == ["page"]
    assert order_search({"page": "10000", "size": "1"}).body["from"] == 9_999


def test_every_order_problem_is_reported_together() -> None:
    errors = order_errors(
        {
            "status": "lost",
            "min_total": "5",
            "max_total": "1",
            "from": "soon",
            "sort": "best",
            "page": "0",
        }
    )
    assert fields(errors) == ["status", "max_total", "from", "sort", "page"]
    assert str(InvalidSearch(errors)).startswith("status: ")


# --- answers ---------------------------------------------------------------------------------

ANSWER: dict[str, Any] = {
    "took": 3,
    "timed_out": False,
    "hits": {
        "total": {"value": 42, "relation": "eq"},
        "max_score": None,
        "hits": [
            {
                "_index": "products-v1",
                "_id": "SKU-1",
                "_version": 7,
                "_score": None,
                "_source": {"product_id": "SKU-1", "name": "Kettle", "price": 2_999},
                "sort": ["kettle", "SKU-1"],
            },
            {
                "_index": "products-v1",
                "_id": "SKU-2",
                "_version": 3,
                "_source": {"product_id": "SKU-2", "name": "Toaster", "price": 4_999},
            },
        ],
    },
    "aggregations": {
        "category": {
            "doc_count_error_upper_bound": 0,
            "sum_other_doc_count": 0,
            "buckets": [{"key": "kitchen", "doc_count": 30}, {"key": "garden", "doc_count": 12}],
        }
    },
}


def test_hits_give_the_total_and_the_documents_with_their_version() -> None:
    assert hits(ANSWER) == (
        42,
        [
            {"product_id": "SKU-1", "name": "Kettle", "price": 2_999, "version": 7},
            {"product_id": "SKU-2", "name": "Toaster", "price": 4_999, "version": 3},
        ],
    )


def test_hits_of_an_empty_answer() -> None:
    answer = {"hits": {"total": {"value": 0, "relation": "eq"}, "hits": []}}
    assert hits(answer) == (0, [])


def test_a_hit_without_version_has_none() -> None:
    answer = {"hits": {"total": {"value": 1}, "hits": [{"_source": {"order_id": "o-1"}}]}}
    assert hits(answer) == (1, [{"order_id": "o-1", "version": None}])


def test_category_facets_give_each_value_and_its_count() -> None:
    assert category_facets(ANSWER) == [
        {"value": "kitchen", "count": 30},
        {"value": "garden", "count": 12},
    ]


def test_an_answer_without_aggregations_has_no_facets() -> None:
    assert category_facets({"hits": ANSWER["hits"]}) == []
    assert category_facets({"aggregations": {}}) == []
    assert category_facets({"aggregations": {"category": {"buckets": []}}}) == []
