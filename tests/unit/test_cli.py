import subprocess
import sys

from click.testing import CliRunner

from orderflow.cli import main


def test_settings_command_prints_the_effective_settings() -> None:
    environment = {"ORDERFLOW_WEB_PORT": "7123", "ORDERFLOW_JWT_SECRET": "s" * 32}
    result = CliRunner().invoke(main, ["settings"], env=environment)
    assert result.exit_code == 0, result.output
    assert "ORDERFLOW_WEB_PORT=7123" in result.output
    assert "ORDERFLOW_JWT_SECRET=(set)" in result.output


def test_settings_command_refuses_what_a_worker_refuses_at_start() -> None:
    result = CliRunner().invoke(main, ["settings"], env={"ORDERFLOW_WEB_PORT": "7123"})
    assert result.exit_code == 1
    assert "ORDERFLOW_JWT_SECRET or ORDERFLOW_JWT_JWKS_URL is required" in result.output


def test_worker_refuses_to_start_with_a_bad_setting() -> None:
    # A real process: the message must reach the operator and the worker must not start.
    completed = subprocess.run(
        [sys.executable, "-m", "orderflow.cli", "worker"],
        env={"ORDERFLOW_WEB_PORT": "eighty", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode != 0
    assert "ORDERFLOW_WEB_PORT='eighty': expected an integer from 1 to 65535" in completed.stderr


def test_infra_rejects_an_unknown_service() -> None:
    result = CliRunner().invoke(main, ["infra", "up", "--only", "kafka,redis"])
    assert result.exit_code == 2
    assert "unknown service(s) redis" in result.output


def test_every_log_level_the_settings_accept_is_one_faust_worker_accepts() -> None:
    from faust.cli.base import LOGLEVELS

    from orderflow.cli import faust_log_level
    from orderflow.settings import Settings

    for level in ("debug", "info", "warning", "error"):
        setting = Settings.from_env({"ORDERFLOW_LOG_LEVEL": level}).log_level
        assert faust_log_level(setting).upper() in LOGLEVELS
