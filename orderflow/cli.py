"""The ``orderflow`` command: workers, the local platform and its infrastructure."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

import click

from orderflow import faust_options, platform
from orderflow.auth import local as local_auth
from orderflow.auth.cli import auth_group
from orderflow.auth.guard import key_problems
from orderflow.cli_settings import settings_or_exit
from orderflow.db.cli import apply_migrations, db, outbox
from orderflow.loadgen.cli import loadgen
from orderflow.payments.cli import payment_sim
from orderflow.projections.cli import projections
from orderflow.resilience.cli import dlq_group
from orderflow.resilience.data_dir_lock import DataDirInUse, ensure_free
from orderflow.schemas.cli import schemas_group
from orderflow.settings import Settings, SettingsError
from orderflow.tables_cli import tables

INFRA_SERVICES = ("kafka", "postgres", "elasticsearch", "mongodb")


def deploy_dir() -> Path:
    """deploy/local of the source tree this package runs from."""
    path = Path(__file__).resolve().parent.parent / "deploy" / "local"
    if not (path / "infra.sh").is_file():
        raise click.ClickException(
            f"the local infrastructure scripts are not at {path}: "
            "run orderflow from a checkout of its repository (pip install -e .)"
        )
    return path


def run_infra(action: str, only: tuple[str, ...] = ()) -> int:
    """Run deploy/local/infra.sh ACTION [--only ...] and return its exit status."""
    command = [str(deploy_dir() / "infra.sh"), action]
    if only:
        command += ["--only", ",".join(only)]
    return subprocess.run(command, check=False).returncode


@click.group()
@click.version_option(package_name="orderflow")
def main() -> None:
    """orderflow: event-driven order processing on Kafka."""


@main.group()
def infra() -> None:
    """Start, stop and inspect the local Kafka, PostgreSQL, Elasticsearch, MongoDB servers."""


_only_option = click.option(
    "--only",
    "only",
    default="",
    metavar="SERVICE[,SERVICE...]",
    help=f"A subset of: {', '.join(INFRA_SERVICES)}.",
)


def _services(only: str) -> tuple[str, ...]:
    services = tuple(name.strip() for name in only.split(",") if name.strip())
    unknown = [name for name in services if name not in INFRA_SERVICES]
    if unknown:
        raise click.BadParameter(
            f"unknown service(s) {', '.join(unknown)}; choose from {', '.join(INFRA_SERVICES)}",
            param_hint="--only",
        )
    return services


@infra.command("up")
@_only_option
def infra_up(only: str) -> None:
    """Start the services (those already running are left alone) and wait until they are healthy."""
    sys.exit(run_infra("up", _services(only)))


@infra.command("down")
@_only_option
def infra_down(only: str) -> None:
    """Stop the services and wait until their processes are gone."""
    sys.exit(run_infra("down", _services(only)))


@infra.command("status")
@_only_option
def infra_status(only: str) -> None:
    """Print each service's state and URL; exit 1 if any of them is down."""
    sys.exit(run_infra("status", _services(only)))


@main.command()
def settings() -> None:
    """Validate the ORDERFLOW_* environment as a worker does at start and print the effective
    settings."""
    effective = settings_or_exit()
    problems = key_problems(effective)
    if problems:
        raise click.ClickException(str(SettingsError(problems)))
    for name, value in sorted(effective.as_env().items()):
        shown = "(set)" if name.endswith("_SECRET") and value else value
        click.echo(f"{name}={shown}")


@main.command()
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 16))
@click.option("--no-infra", is_flag=True, help="Use services that are already running.")
@click.option(
    "--var-dir",
    default="var",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the workers keep their table data and logs.",
)
def run(workers: int, no_infra: bool, var_dir: Path) -> None:
    """Start the platform here: infrastructure, workers and web views. Ctrl-C stops it."""
    # Without a configured key the platform signs with a secret of its own (var/jwt-secret).
    settings = local_auth.with_local_secret(settings_or_exit(), var_dir)
    if not no_infra and run_infra("up") != 0:
        raise click.ClickException("the local infrastructure did not start (see above)")
    try:
        applied = asyncio.run(apply_migrations(settings))
    except Exception as error:
        raise click.ClickException(f"migrating {settings.database_url} failed: {error}") from None
    if applied:
        click.echo(f"database migrated: {', '.join(applied)}")
    var = var_dir.resolve()
    processes = [
        platform.payment_simulator_process(settings, var),
        *platform.worker_processes(settings, workers, var),
    ]
    for process in processes:
        process.start()
    click.echo(f"starting the payment simulator and {workers} worker(s); logs in {var / 'log'}")
    first = f"http://127.0.0.1:{settings.web_port}"
    try:
        platform.wait_ready(processes, timeout=180)
        operator = local_auth.operator_header(settings, var_dir)
        stocked = platform.seed_demo_stock(first, operator)
        listed = platform.seed_demo_catalog(first, operator)
    except platform.PlatformError as error:
        for process in processes:
            process.stop()
        raise click.ClickException(str(error)) from None
    if stocked:
        click.echo(f"demo stock added for {', '.join(stocked)}")
    if listed:
        click.echo(f"demo products added: {', '.join(listed)}")
    click.echo(
        "\norderflow is running:\n"
        + "".join(
            f"  {p.name:<10} {p.ready_url.rsplit('/', 1)[0]}  (log: {p.log_path})\n"
            for p in processes
        )
        + f"  health     {first}/healthz, {first}/readyz\n"
        + "  infra      orderflow infra status\n\n"
        + _tokens(settings, var_dir)
        + "Try it:\n"
        + f"  curl -s -XPOST {first}/api/v1/orders -H 'Content-Type: application/json' \\\n"
        + """    -H "Authorization: Bearer $TOKEN" -d '{"currency": "USD", """
        + """"lines": [{"sku": "SKU-1", "quantity": 2, "unit_price": 1999}], """
        + """"payment": {"token": "tok_visa"}}'\n"""
        + """  curl -s -H "Authorization: Bearer $TOKEN" \\\n"""
        + f"    '{first}/api/v1/orders/ORDER_ID?wait=5'\n"
        + f"  curl -s '{first}/api/v1/products/search?q=mugs&in_stock=true'\n\n"
        + "Press Ctrl-C to stop the workers and the simulator.\n"
    )
    sys.exit(platform.supervise(processes, click.echo))


# Faust's own options for where a worker keeps its data and serves its views; `orderflow
# worker` takes them as Faust users write them and turns them into the ORDERFLOW_* variables
# (an option wins over its variable), so that the settings, the data directory's lock and the
# advertised URL all agree (see orderflow.faust_options).
_WORKER_OPTIONS = {
    "datadir": "ORDERFLOW_DATA_DIR",
    "web_port": "ORDERFLOW_WEB_PORT",
    "web_bind": "ORDERFLOW_WEB_HOST",
    "web_host": "ORDERFLOW_ADVERTISED_HOST",
}


def faust_log_level(level: str) -> str:
    """ORDERFLOW_LOG_LEVEL as `faust worker --loglevel` spells it (WARN, not WARNING)."""
    return {"WARNING": "warn"}.get(level.upper(), level.lower())


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option(
    "--datadir",
    "-D",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where this worker keeps its tables (ORDERFLOW_DATA_DIR); one worker per directory.",
)
@click.option(
    "--web-port", "-p", type=click.IntRange(1, 65535), help="Web port (ORDERFLOW_WEB_PORT)."
)
@click.option("--web-bind", "-b", help="Address the web views listen on (ORDERFLOW_WEB_HOST).")
@click.option(
    "--web-host",
    "-h",
    help="Host name the other workers reach this one at (ORDERFLOW_ADVERTISED_HOST).",
)
@click.pass_context
def worker(
    ctx: click.Context,
    datadir: Path | None,
    web_port: int | None,
    web_bind: str | None,
    web_host: str | None,
) -> NoReturn:
    """Run a Faust worker of the platform (extra options go to `faust worker`)."""
    # Faust's F_DATADIR stands for --datadir, as it does for `faust -A orderflow.app worker`.
    datadir_given = datadir or faust_options.faust_datadir(os.environ)
    given = {
        "datadir": datadir_given,
        "web_port": web_port,
        "web_bind": web_bind,
        "web_host": web_host,
    }
    for option, value in given.items():
        if value is not None:
            os.environ[_WORKER_OPTIONS[option]] = str(value)
    settings = settings_or_exit()
    try:
        ensure_free(settings.data_dir)
    except DataDirInUse as error:
        raise click.ClickException(str(error)) from None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        "faust",
        "-A",
        "orderflow.app",
        "worker",
        "--loglevel",
        faust_log_level(settings.log_level),
        *ctx.args,
    ]
    os.execv(sys.executable, argv)


def _tokens(settings: Settings, var_dir: Path) -> str:
    """Tokens to try the API with (valid 12 hours), when this platform signs its own."""
    secret = local_auth.local_secret(settings, var_dir)
    if secret is None:
        return ""
    customer = local_auth.token(settings, "c-1", ["customer"], 12 * 3600, secret)
    admin = local_auth.token(settings, "admin", ["admin"], 12 * 3600, secret)
    return (
        "Tokens (12 h; more with `orderflow auth token --subject c-2 --role customer`):\n"
        f"  export TOKEN={customer}   # customer c-1\n"
        f"  export ADMIN_TOKEN={admin}\n\n"
    )


main.add_command(auth_group)
main.add_command(payment_sim)
main.add_command(tables)
main.add_command(schemas_group)
main.add_command(db)
main.add_command(outbox)
main.add_command(dlq_group)
main.add_command(projections)
main.add_command(loadgen)

if __name__ == "__main__":  # pragma: no cover
    main()
