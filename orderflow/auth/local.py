"""Tokens on one's own machine: the local platform's secret, and tokens minted with it.

``orderflow run`` without ``ORDERFLOW_JWT_SECRET`` (or a JWKS URL) generates a secret once into
its var directory (``var/jwt-secret``, readable by its owner only) and gives it to its workers;
``orderflow auth token`` and ``orderflow tables`` find it there.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import replace
from pathlib import Path

from orderflow.auth.tokens import mint
from orderflow.settings import AuthMode, Settings

SECRET_FILE = "jwt-secret"
DEFAULT_VAR_DIR = Path("var")


def secret_path(var_dir: Path) -> Path:
    return var_dir / SECRET_FILE


def local_secret(settings: Settings, var_dir: Path = DEFAULT_VAR_DIR) -> str | None:
    """The HS256 secret tokens are signed with here: the configured one, else the local one."""
    if settings.jwt_secret:
        return settings.jwt_secret
    try:
        return secret_path(var_dir).read_text().strip() or None
    except FileNotFoundError:
        return None


def with_local_secret(settings: Settings, var_dir: Path) -> Settings:
    """``settings`` with a secret to sign and verify tokens: as configured, or the local
    platform's, generated on first use."""
    if settings.auth is AuthMode.DISABLED or settings.jwt_secret or settings.jwt_jwks_url:
        return settings
    path = secret_path(var_dir)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(32) + "\n")
    return replace(settings, jwt_secret=path.read_text().strip())


def token(settings: Settings, subject: str, roles: list[str], ttl: float, secret: str) -> str:
    return mint(
        secret, subject, roles, issuer=settings.jwt_issuer, audience=settings.jwt_audience, ttl=ttl
    )


def operator_header(settings: Settings, var_dir: Path = DEFAULT_VAR_DIR) -> dict[str, str]:
    """An Authorization header of a short-lived admin token, when a secret is at hand."""
    secret = local_secret(settings, var_dir)
    if secret is None:
        return {}
    return {"Authorization": f"Bearer {token(settings, 'orderflow-cli', ['admin'], 300, secret)}"}
