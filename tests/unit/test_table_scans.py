"""The rules of a table scan: one worker's selection, and the merge of all workers' answers."""

from __future__ import annotations

import orjson
import pytest

from orderflow.views.problems import Problem
from orderflow.views.scans import WorkerScan, merge, parse_limit, select


def _stored(*keys: str) -> list[tuple[str, bytes]]:
    return [(key, orjson.dumps({"k": key})) for key in keys]


def _item(key: str) -> dict[str, object]:
    return {"key": key, "value": {"k": key}}


@pytest.mark.parametrize(("raw", "limit"), [(None, 100), ("1", 1), ("1000", 1000)])
def test_parse_limit_accepts_1_to_1000(raw: str | None, limit: int) -> None:
    assert parse_limit(raw) == limit


@pytest.mark.parametrize("raw", ["0", "1001", "-5", "ten", "", "2.5"])
def test_parse_limit_refuses_anything_else_with_400(raw: str) -> None:
    with pytest.raises(Problem) as refused:
        parse_limit(raw)
    assert refused.value.status == 400
    assert "from 1 to 1000" in refused.value.detail


def test_select_filters_by_prefix_sorts_and_cuts() -> None:
    items, truncated = select(_stored("b-2", "a-1", "b-1", "b-3", "c-1"), "b-", 2)

    assert items == [_item("b-1"), _item("b-2")]
    assert truncated


def test_select_is_not_truncated_when_everything_fits() -> None:
    assert select(_stored("b", "a"), "", 2) == ([_item("a"), _item("b")], False)
    assert select([], "x", 5) == ([], False)


def test_merge_keeps_the_first_keys_of_all_workers_in_order() -> None:
    scans = [
        WorkerScan("http://w1", [_item("a"), _item("d")], truncated=False, partitions=[0, 1]),
        WorkerScan("http://w2", [_item("b"), _item("c")], truncated=False, partitions=[2, 3]),
    ]

    merged = merge(scans, limit=3, partitions=4)

    assert merged == {
        "items": [_item("a"), _item("b"), _item("c")],
        "truncated": True,
        "complete": True,
        "missing_partitions": [],
        "workers": [
            {"url": "http://w1", "items": 2, "error": None},
            {"url": "http://w2", "items": 2, "error": None},
        ],
    }


def test_merge_is_truncated_when_a_worker_had_more() -> None:
    scans = [WorkerScan("http://w1", [_item("a")], truncated=True, partitions=[0])]

    merged = merge(scans, limit=1, partitions=1)

    assert merged["truncated"]
    assert merged["complete"]


def test_a_worker_that_did_not_answer_makes_the_answer_partial() -> None:
    scans = [
        WorkerScan("http://w1", [_item("a")], partitions=[0, 1]),
        WorkerScan("http://w2", error="no answer within 10 s"),
    ]

    merged = merge(scans, limit=10, partitions=4)

    assert merged["items"] == [_item("a")]
    assert not merged["complete"]
    assert merged["missing_partitions"] == [2, 3]
    assert merged["workers"][1]["error"] == "no answer within 10 s"


def test_partitions_that_no_worker_scanned_make_the_answer_partial() -> None:
    # e.g. a rebalance moved a partition between the assignment and the scans
    scans = [WorkerScan("http://w1", [], partitions=[0, 1, 3])]

    merged = merge(scans, limit=10, partitions=4)

    assert not merged["complete"]
    assert merged["missing_partitions"] == [2]
