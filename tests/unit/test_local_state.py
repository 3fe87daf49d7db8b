"""Local tables survive a restart only when the last run stopped cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest

from orderflow.resilience import local_state


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    data_dir = tmp_path / "data"
    table_dir = data_dir / "v1" / "tables"
    (table_dir / "inventory-3.db").mkdir(parents=True)
    (table_dir / "inventory-3.db" / "000012.log").write_bytes(b"records")
    return data_dir, table_dir


def test_tables_left_by_a_killed_worker_are_discarded(dirs: tuple[Path, Path]) -> None:
    data_dir, table_dir = dirs

    assert local_state.claim(data_dir, table_dir) is True
    assert not table_dir.exists()


def test_tables_left_by_a_clean_stop_are_kept_once(dirs: tuple[Path, Path]) -> None:
    data_dir, table_dir = dirs
    local_state.mark_clean_stop(data_dir)

    assert local_state.claim(data_dir, table_dir) is False
    assert (table_dir / "inventory-3.db" / "000012.log").read_bytes() == b"records"
    # The mark is used up: if this run is killed, the next start discards the tables.
    assert not (data_dir / local_state.CLEAN_STOP_MARK).exists()
    assert local_state.claim(data_dir, table_dir) is True
    assert not table_dir.exists()


def test_a_first_start_has_nothing_to_discard(tmp_path: Path) -> None:
    assert local_state.claim(tmp_path / "data", tmp_path / "data" / "v1" / "tables") is False
    empty = tmp_path / "empty" / "tables"
    empty.mkdir(parents=True)
    assert local_state.claim(tmp_path / "empty", empty) is False
    assert empty.exists()
