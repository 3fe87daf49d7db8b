"""The check of the faust-streaming release and of the private parts orderflow relies on."""

from __future__ import annotations

import tomllib

import pytest
from faust.tables.recovery import Recovery

from orderflow import faust_surface
from orderflow.app import create_app
from orderflow.settings import Settings
from tests.support.workers import REPO


def test_the_installed_release_has_everything_orderflow_uses() -> None:
    assert faust_surface.problems() == []


def test_the_pin_in_pyproject_is_the_release_checked() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    [faust] = [d for d in project["dependencies"] if d.startswith("faust-streaming")]
    assert faust.endswith(f"=={faust_surface.FAUST_RELEASE}")


def test_another_release_is_named() -> None:
    found = faust_surface.problems(installed=lambda: "0.16.0")
    assert found == ["faust-streaming 0.16.0 is installed; orderflow needs 0.15.3"]


def test_a_missing_private_method_stops_the_app_from_being_created(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(Recovery, "_seek_offsets")
    with pytest.raises(faust_surface.IncompatibleFaust, match=r"Recovery\._seek_offsets is gone"):
        create_app(Settings(), platform=False)
