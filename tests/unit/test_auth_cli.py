"""`orderflow auth token` and the local platform's secret."""

from __future__ import annotations

import stat
from pathlib import Path

from click.testing import CliRunner

from orderflow.auth import local
from orderflow.auth.principal import Role
from orderflow.auth.tokens import TokenVerifier
from orderflow.cli import main
from orderflow.settings import AuthMode, Settings

SECRET = "k" * 32


async def test_the_printed_token_verifies_with_the_configured_secret(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["auth", "token", "--subject", "c-7", "--role", "customer", "--ttl", "60"],
        env={"ORDERFLOW_JWT_SECRET": SECRET, "ORDERFLOW_JWT_AUDIENCE": "shop"},
    )
    assert result.exit_code == 0, result.output
    principal = await TokenVerifier("orderflow", "shop", 0, secret=SECRET).verify(
        result.output.strip()
    )
    assert (principal.subject, principal.roles) == ("c-7", frozenset({Role.CUSTOMER}))


def test_without_a_secret_it_says_where_one_comes_from(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["auth", "token", "--subject", "c-1", "--role", "admin", "--var-dir", str(tmp_path)],
        env={"ORDERFLOW_JWT_SECRET": None},
    )
    assert result.exit_code == 1
    assert "orderflow run" in result.output


async def test_the_local_platform_generates_its_secret_once(tmp_path: Path) -> None:
    first = local.with_local_secret(Settings(), tmp_path)
    again = local.with_local_secret(Settings(), tmp_path)
    assert len(first.jwt_secret) == 64
    assert again.jwt_secret == first.jwt_secret
    assert stat.S_IMODE(local.secret_path(tmp_path).stat().st_mode) == 0o600
    result = CliRunner().invoke(
        main,
        ["auth", "token", "--subject", "ops", "--role", "admin", "--var-dir", str(tmp_path)],
        env={"ORDERFLOW_JWT_SECRET": None},
    )
    assert (await TokenVerifier("orderflow", "orderflow", 0, first.jwt_secret).verify(
        result.output.strip()
    )).is_admin  # fmt: skip
    # A configured key or an explicit opt-out is left as it is.
    configured = Settings(jwt_secret=SECRET)
    assert local.with_local_secret(configured, tmp_path / "x") is configured
    disabled = Settings(auth=AuthMode.DISABLED)
    assert local.with_local_secret(disabled, tmp_path / "y").jwt_secret == ""
    assert not (tmp_path / "y").exists()
