"""Settings for a command: the ORDERFLOW_* environment, or a clear error and exit status 1."""

from __future__ import annotations

import click

from orderflow.settings import Settings, SettingsError


def settings_or_exit() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as error:
        raise click.ClickException(str(error)) from None
