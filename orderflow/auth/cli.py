"""``orderflow auth token``: a bearer token for local use, tests and the README's curl calls."""

from __future__ import annotations

from pathlib import Path

import click

from orderflow.auth import local
from orderflow.auth.principal import Role
from orderflow.cli_settings import settings_or_exit


@click.group("auth")
def auth_group() -> None:
    """Bearer tokens for the API."""


@auth_group.command("token")
@click.option("--subject", required=True, help="The token's sub: a customer id for customers.")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    type=click.Choice([role.value for role in Role]),
    help="customer, service or admin (repeat for several).",
)
@click.option("--ttl", default=3600, show_default=True, type=click.IntRange(1, 30 * 24 * 3600))
@click.option(
    "--var-dir",
    default=str(local.DEFAULT_VAR_DIR),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where `orderflow run` keeps its generated secret (used without ORDERFLOW_JWT_SECRET).",
)
def token(subject: str, roles: tuple[str, ...], ttl: int, var_dir: Path) -> None:
    """Print an HS256 token signed with ORDERFLOW_JWT_SECRET (or the local platform's secret)."""
    settings = settings_or_exit()
    secret = local.local_secret(settings, var_dir)
    if secret is None:
        raise click.ClickException(
            "no secret to sign with: set ORDERFLOW_JWT_SECRET, or start the platform once with "
            f"`orderflow run` (it writes {local.secret_path(var_dir)}); tokens of an identity "
            "provider (ORDERFLOW_JWT_JWKS_URL) come from that provider"
        )
    if not subject.strip() or len(subject) > 100:
        raise click.BadParameter("1 to 100 characters", param_hint="--subject")
    click.echo(local.token(settings, subject, list(dict.fromkeys(roles)), ttl, secret))
