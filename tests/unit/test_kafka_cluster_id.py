"""The local Kafka's KRaft cluster id is one the storage tool accepts."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

KAFKA_SH = Path(__file__).resolve().parents[2] / "deploy" / "local" / "kafka.sh"
DRAWS = 1000


def test_no_cluster_id_is_taken_for_an_option() -> None:
    # A URL-safe base64 id starts with "-" once in 64 draws; the storage tool then reads it as
    # an option and refuses to format ("--cluster-id: expected one argument"). 1000 draws
    # without the redraw would all avoid it with a probability of about 2e-7.
    script = f'source "{KAFKA_SH}"; for _ in $(seq {DRAWS}); do uuidgen_kafka; echo; done'
    ids = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()

    assert len(ids) == DRAWS
    assert [i for i in ids if i.startswith("-")] == []
    assert {len(base64.urlsafe_b64decode(i + "==")) for i in ids} == {16}
    assert len(set(ids)) == DRAWS
