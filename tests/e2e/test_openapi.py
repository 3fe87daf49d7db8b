"""Schemathesis against a running worker: every operation of /openapi.json, with the data it
generates from the schemas, as an administrator and as a customer. No answer may be a 5xx,
and every answer must match the document (status, content type, headers, body schema).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support import auth
from tests.support.workers import PaymentSimulator, WorkerProcess, platform_workers

EXAMPLES = 20
CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def worker(
    kafka_bootstrap: str,
    database_url: str,
    elasticsearch: str,
    mongodb: str,
    run_id: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[WorkerProcess]:
    tmp = tmp_path_factory.mktemp("openapi")
    with PaymentSimulator(tmp / "payment-sim.log") as simulator:
        [process] = platform_workers(
            1,
            tmp,
            name=f"{run_id}-openapi",
            kafka=kafka_bootstrap,
            partitions=2,
            database_url=database_url,
            gateway=simulator.url,
            elasticsearch_url=elasticsearch,
            mongodb_url=mongodb,
            # Small bodies, so that the generated ones find the limit too.
            max_body_bytes="4096",
        )
        process.start()
        try:
            process.wait_ready()
            yield process
        finally:
            process.stop()
            log = process.log_tail(2000)
            for sign in ("unhandled error", "Unhandled exception"):
                assert sign not in log, log


@pytest.fixture(scope="module")
def api(worker: WorkerProcess) -> Any:
    return schemathesis.openapi.from_url(f"{worker.url}/openapi.json")


def run_operations(api: Any, headers: dict[str, str]) -> int:
    """Every operation, with examples generated from its schemas (through Schemathesis's
    Hypothesis strategies: its pytest loader does not run on this pytest); the number run."""
    count = 0
    for result in api.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            if case.query and "wait" in case.query:
                case.query["wait"] = 0  # the long-poll of an order that does not exist waits
            case.call_and_validate(headers=headers, checks=CHECKS, timeout=60)

        run()
        count += 1
    return count


@pytest.mark.parametrize(
    "identity",
    [auth.admin, lambda: auth.customer("c-openapi"), dict],
    ids=["admin", "customer", "anonymous"],
)
def test_every_answer_matches_the_document(api: Any, identity: Any) -> None:
    assert run_operations(api, identity()) >= 20
