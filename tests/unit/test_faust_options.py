"""Faust's own --datadir, --web-port, --web-host and --web-bind do what Faust users expect."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from faust.cli.worker import worker as faust_worker_command

from orderflow.app import OrderflowApp, create_app
from orderflow.faust_options import (
    FAUST_DEFAULT_DATADIR,
    faust_datadir,
    with_faust_datadir,
    with_worker_options,
)
from orderflow.settings import Settings


def test_faust_datadir_counts_only_when_given() -> None:
    assert faust_datadir({}) is None
    # What `faust` sets when --datadir is absent.
    assert faust_datadir({"F_DATADIR": FAUST_DEFAULT_DATADIR}) is None
    assert faust_datadir({"F_DATADIR": "/srv/w1"}) == "/srv/w1"
    assert faust_datadir({"FAUST_DATADIR": "/srv/w2"}) == "/srv/w2"
    settings = Settings.from_env({"ORDERFLOW_DATA_DIR": "/var/lib/orderflow"})
    assert with_faust_datadir(settings, {"F_DATADIR": "/srv/w1"}).data_dir == Path("/srv/w1")
    assert with_faust_datadir(settings, {}).data_dir == Path("/var/lib/orderflow")


def apply_faust_worker_options(app: OrderflowApp, **given: object) -> Settings:
    """What `faust worker --web-port ...` does to the app (Faust's own code), then what the
    worker does with it when it starts."""
    options = {"web_port": None, "web_bind": None, "web_host": None, **given}
    faust_worker_command._init_worker_options(
        SimpleNamespace(app=app), with_web=True, web_transport=None, **options
    )
    return with_worker_options(
        app.settings,
        data_dir=Path(app.conf.datadir),
        web_port=app.conf.web_port,
        web_bind=app.conf.web_bind,
        web_host=app.conf.web_host,
    )


def test_without_options_the_settings_stand() -> None:
    settings = Settings.from_env({"ORDERFLOW_ADVERTISED_HOST": "worker-0.workers"})
    app = create_app(settings, platform=False)
    assert apply_faust_worker_options(app) == settings
    assert str(app.conf.canonical_url) == settings.canonical_url


@pytest.mark.parametrize(
    ("env", "given", "expected_url"),
    [
        # --web-port keeps the advertised host, or the bind address when there is none.
        ({"ORDERFLOW_ADVERTISED_HOST": "worker-0.workers"}, {"web_port": 7001},
         "http://worker-0.workers:7001"),
        ({}, {"web_port": 7002}, "http://127.0.0.1:7002"),
        ({"ORDERFLOW_WEB_HOST": "0.0.0.0"}, {"web_port": 7003}, "http://127.0.0.1:7003"),
        # --web-host is the name the other workers use.
        ({"ORDERFLOW_WEB_PORT": "6070"}, {"web_host": "node-7"}, "http://node-7:6070"),
        # --web-bind changes where it listens, not where the others reach it.
        ({"ORDERFLOW_ADVERTISED_HOST": "w1"}, {"web_bind": "0.0.0.0"}, "http://w1:6066"),
    ],
)  # fmt: skip
def test_worker_options_and_settings_agree(
    env: dict[str, str], given: dict[str, object], expected_url: str
) -> None:
    app = create_app(Settings.from_env(env), platform=False)
    settings = apply_faust_worker_options(app, **given)
    assert settings.canonical_url == expected_url
    assert str(app.conf.canonical_url) == expected_url
    assert settings.web_port == app.conf.web_port
    assert settings.web_host == app.conf.web_bind
