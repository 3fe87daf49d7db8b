"""Faust's own command-line options, folded into orderflow's Settings.

``faust -A orderflow.app --datadir DIR worker --web-port N --web-host H --web-bind B`` (and
``orderflow worker`` with the same options) must do what Faust users expect: keep the tables
in DIR, listen on B:N and advertise http://H:N to the other workers. orderflow configures the
app from ``Settings``, so each option is folded into the settings, where the rest of the worker
(the data directory's lock and clean-stop mark, the canonical URL that forwarded queries go
to) reads it. An option given on the command line wins over its ``ORDERFLOW_*`` variable.

- ``--datadir`` is an option of the ``faust`` command itself; Faust hands it to the app through
  the ``F_DATADIR`` variable (set to ``{conf.name}-data`` when the option is absent), before the
  app is created.
- ``--web-port``, ``--web-host`` and ``--web-bind`` belong to ``faust worker``, which writes
  them into the app's configuration after the app was created; the worker reads them back when
  it starts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from orderflow.settings import Settings

# What `faust --datadir` defaults to: no data directory was asked for on the command line.
FAUST_DEFAULT_DATADIR = "{conf.name}-data"


def faust_datadir(environ: Mapping[str, str]) -> str | None:
    """The data directory given to Faust's command line (or its F_DATADIR / FAUST_DATADIR
    variable), or None when there is none."""
    value = environ.get("F_DATADIR") or environ.get("FAUST_DATADIR") or ""
    return None if value in ("", FAUST_DEFAULT_DATADIR) else value


def with_faust_datadir(settings: Settings, environ: Mapping[str, str]) -> Settings:
    """``settings`` with Faust's ``--datadir`` as its data directory, if one was given."""
    datadir = faust_datadir(environ)
    if datadir is None:
        return settings
    return dataclasses.replace(settings, data_dir=Path(datadir))


def canonical_host(settings: Settings) -> str:
    """The host part of the URL other workers reach this one at (Faust's ``web_host``)."""
    return urlsplit(settings.canonical_url).hostname or settings.web_host


def with_worker_options(
    settings: Settings, *, data_dir: Path, web_port: int, web_bind: str, web_host: str
) -> Settings:
    """``settings`` agreeing with the app's configuration once ``faust worker`` has applied
    its options (``web_host`` is the advertised host, ``web_bind`` the listening address)."""
    changes: dict[str, object] = {}
    if data_dir != settings.data_dir:
        changes["data_dir"] = data_dir
    if web_port != settings.web_port:
        changes["web_port"] = web_port
    if web_bind != settings.web_host:
        changes["web_host"] = web_bind
    updated = dataclasses.replace(settings, **changes) if changes else settings  # type: ignore[arg-type]
    if canonical_host(updated) != web_host:
        updated = dataclasses.replace(updated, advertised_host=web_host)
    return updated
