"""The Kubernetes manifests: what kustomize renders from deploy/k8s and deploy/k8s/production
passes the Kubernetes API's schemas (offline, strict: no unknown field), and configures what
the code expects (settings, probes, the data directory, the image's user, the metric the
autoscaler reads)."""

from __future__ import annotations

import base64
import inspect
import os
import re
import secrets
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from orderflow.auth.guard import Guard
from orderflow.cli import main
from orderflow.db.migrate import migrate
from orderflow.settings import Settings
from tests.unit.keda_scaledobject_schema import (
    KAFKA_TRIGGER_KEYS,
    KAFKA_TRIGGER_REQUIRED,
    SCALED_OBJECT,
)

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
BASE = K8S / "base"
PRODUCTION = K8S / "production"
# The oldest Kubernetes the manifests are for, and the newest schemas the validator bundles.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
DATA_DIR = "/var/lib/orderflow"

Manifests = dict[str, dict[str, Any]]


def kustomize_command() -> list[str]:
    """`kubectl kustomize`, `kustomize build`, or the kustomize deploy/local/tools.sh built."""
    if shutil.which("kubectl"):
        probe = subprocess.run(
            ["kubectl", "kustomize", "--help"], capture_output=True, timeout=60, check=False
        )
        if probe.returncode == 0:
            return ["kubectl", "kustomize"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if os.environ.get("ORDERFLOW_CACHE_DIR"):
        cache = Path(os.environ["ORDERFLOW_CACHE_DIR"])
    elif os.geteuid() == 0:
        cache = Path("/var/cache/orderflow")
    else:
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "orderflow"
    built = sorted(cache.glob("kustomize-*/kustomize"))
    if not built:
        pytest.fail("no kubectl or kustomize: run deploy/local/tools.sh (make test does)")
    return [str(built[-1]), "build"]


def render(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*kustomize_command(), str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def kustomize(directory: Path) -> list[dict[str, Any]]:
    result = render(directory)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def by_name(documents: list[dict[str, Any]]) -> Manifests:
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in documents}


# The files the operator writes for the production Secret (production/secrets/).
SECRET_FILES = ("database-url.txt", "forwarding-secret.txt")
OPERATOR_SECRETS = {
    "database-url.txt": "postgresql://orderflow:s3cret-from-the-vault@db.internal:5432/orderflow\n",
    "forwarding-secret.txt": secrets.token_hex(32) + "\n",
}


def production_copy(tmp: Path, files: dict[str, str]) -> Path:
    """deploy/k8s copied to ``tmp`` with these files in production/secrets/; the overlay's
    directory in the copy."""
    copy = tmp / "k8s"
    shutil.copytree(K8S, copy, ignore=shutil.ignore_patterns(*SECRET_FILES))
    for name, content in files.items():
        (copy / "production" / "secrets" / name).write_text(content)
    return copy / "production"


@pytest.fixture(scope="module")
def base() -> Manifests:
    return by_name(kustomize(K8S))


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Manifests:
    return by_name(kustomize(production_copy(tmp_path_factory.mktemp("k8s"), OPERATOR_SECRETS)))


@pytest.fixture(params=["base", "production"])
def rendered(request: pytest.FixtureRequest) -> Manifests:
    manifests: Manifests = request.getfixturevalue(request.param)
    return manifests


def pod_spec(manifests: Manifests, name: str = "StatefulSet/worker") -> dict[str, Any]:
    spec: dict[str, Any] = manifests[name]["spec"]["template"]["spec"]
    return spec


def secret(manifests: Manifests) -> dict[str, str]:
    """The decoded values of the Secret the workers read (its name has kustomize's hash)."""
    (name,) = {
        s["secretRef"]["name"] for s in worker_container(manifests)["envFrom"] if "secretRef" in s
    }
    data = manifests[f"Secret/{name}"]["data"]
    return {key: base64.b64decode(value).decode() for key, value in data.items()}


def worker_container(manifests: Manifests) -> dict[str, Any]:
    (container,) = pod_spec(manifests)["containers"]
    return dict(container)


def worker_settings(manifests: Manifests, pod: str = "worker-0") -> Settings:
    """The Settings a worker pod starts with: ConfigMap, Secret and its own env, as the
    kubelet would assemble them (later sources win; $(POD_NAME) expanded)."""
    container = worker_container(manifests)
    env: dict[str, str] = {}
    for source in container["envFrom"]:
        if "configMapRef" in source:
            env.update(manifests[f"ConfigMap/{source['configMapRef']['name']}"]["data"])
        else:
            env.update(secret(manifests))
    for variable in container["env"]:
        if "value" in variable:
            env[variable["name"]] = variable["value"].replace("$(POD_NAME)", pod)
    return Settings.from_env(env)


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


# -- kustomize and the schemas ------------------------------------------------------------


def test_the_base_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    files = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def kinds_and_names(manifests: Manifests) -> set[str]:
    """``Kind/name``, without the hash kustomize appends to a generated Secret's name."""
    return {re.sub(r"^(Secret/orderflow)-[a-z0-9]{10}$", r"\1", name) for name in manifests}


def test_the_base_and_production_render(base: Manifests, production: Manifests) -> None:
    expected = {
        "Namespace/orderflow",
        "ConfigMap/orderflow",
        "Secret/orderflow",
        "Service/orderflow",
        "Service/orderflow-workers",
        "StatefulSet/worker",
        "PodDisruptionBudget/worker",
        "NetworkPolicy/worker",
    }
    assert kinds_and_names(base) == expected
    assert kinds_and_names(production) == {*expected, "ScaledObject/worker"}
    for manifests in (base, production):
        for name, document in manifests.items():
            if document["kind"] != "Namespace":
                assert document["metadata"]["namespace"] == "orderflow", name
            assert document["metadata"]["labels"]["app.kubernetes.io/name"] == "orderflow"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_passes_the_kubernetes_schemas_strictly(
    rendered: Manifests, version: str
) -> None:
    for name, document in rendered.items():
        if document["apiVersion"].startswith("keda.sh/"):
            continue  # not the Kubernetes API's: see test_the_scaled_object_is_kedas
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{name} against Kubernetes {version}: {error.message}")


def test_strict_validation_rejects_a_misplaced_field(base: Manifests) -> None:
    # What a typo looks like: a probe written one level too high. Without strict mode it passes.
    document = yaml.safe_load(yaml.safe_dump(base["StatefulSet/worker"]))
    document["spec"]["template"]["spec"]["readinessProbe"] = {"httpGet": {"path": "/readyz"}}
    kubernetes_validate.validate(document, KUBERNETES_VERSIONS[0], strict=False)
    with pytest.raises(kubernetes_validate.ValidationError, match="readinessProbe"):
        kubernetes_validate.validate(document, KUBERNETES_VERSIONS[0], strict=True)


# -- settings -----------------------------------------------------------------------------


def test_the_configmap_holds_settings_only(rendered: Manifests) -> None:
    data = rendered["ConfigMap/orderflow"]["data"]
    # Settings.from_env ignores variables without the prefix: they must not be here.
    assert all(key.startswith("ORDERFLOW_") for key in data), sorted(data)
    Settings.from_env(data)  # unknown or invalid ORDERFLOW_* settings raise
    assert set(secret(rendered)) == {"ORDERFLOW_DATABASE_URL", "ORDERFLOW_FORWARDING_SECRET"}


# -- the Secret ---------------------------------------------------------------------------


def test_production_takes_the_secret_from_the_operators_files(
    base: Manifests, production: Manifests
) -> None:
    values = secret(production)
    assert values == {
        "ORDERFLOW_DATABASE_URL": OPERATOR_SECRETS["database-url.txt"],
        "ORDERFLOW_FORWARDING_SECRET": OPERATOR_SECRETS["forwarding-secret.txt"],
    }
    # Nothing of the local variant's development values, and nothing of the render checks.
    development = secret(base)
    assert all("dev-only" in value for value in development.values())
    assert not set(values.values()) & set(development.values())
    assert [n for n in production if n.startswith("Secret/")] == [
        f"Secret/{s['secretRef']['name']}"
        for s in worker_container(production)["envFrom"]
        if "secretRef" in s
    ]
    for name in ("base", "production"):
        text = (K8S / name).joinpath("kustomization.yaml").read_text()
        assert "dev-only" not in text, name
    # The values are the operator's files, never committed (git ignores them).
    ignored = subprocess.run(
        ["git", "check-ignore", *(str(PRODUCTION / "secrets" / f) for f in SECRET_FILES)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ignored.returncode == 0, ignored.stderr
    assert not list(K8S.rglob("secret*.yaml"))


def example(name: str) -> str:
    return (PRODUCTION / "secrets" / f"{name}.example").read_text()


@pytest.mark.parametrize(
    ("files", "error"),
    [
        ({}, "database-url.txt: no such file or directory"),
        (
            {"database-url.txt": OPERATOR_SECRETS["database-url.txt"]},
            "forwarding-secret.txt: no such file or directory",
        ),
        (
            {name: example(name) for name in SECRET_FILES},
            "-is-still-the-example-placeholder",
        ),
        (
            {**OPERATOR_SECRETS, "database-url.txt": example("database-url.txt")},
            "/secrets/database-url.txt-is-still-the-example-placeholder",
        ),
        (
            {**OPERATOR_SECRETS, "database-url.txt": example("database-url.txt").rstrip()},
            "/secrets/database-url.txt-is-still-the-example-placeholder",
        ),
        (
            {**OPERATOR_SECRETS, "forwarding-secret.txt": example("forwarding-secret.txt")},
            "/secrets/forwarding-secret.txt-is-still-the-example-placeholder",
        ),
        (
            {**OPERATOR_SECRETS, "forwarding-secret.txt": ""},
            "/secrets/database-url.txt-or-forwarding-secret.txt-is-empty",
        ),
        (
            {**OPERATOR_SECRETS, "database-url.txt": "\n"},
            "/secrets/database-url.txt-or-forwarding-secret.txt-is-empty",
        ),
    ],
    ids=[
        "none",
        "one-missing",
        "examples",
        "db-example",
        "db-example-no-newline",
        "forwarding-example",
        "empty",
        "blank",
    ],
)
def test_production_does_not_render_without_real_secrets(
    tmp_path: Path, files: dict[str, str], error: str
) -> None:
    result = render(production_copy(tmp_path, files))
    assert result.returncode != 0
    assert error in result.stderr, result.stderr
    # The same copy renders once the operator's real files are there.
    overlay = production_copy(tmp_path / "fixed", OPERATOR_SECRETS)
    assert render(overlay).returncode == 0


def test_the_examples_show_valid_settings() -> None:
    """Filled in, the examples' forms are what a worker accepts."""
    url = example("database-url.txt").strip().replace("REPLACE-WITH-THE-DATABASE-PASSWORD", "pw")
    settings = Settings.from_env(
        {"ORDERFLOW_DATABASE_URL": url, "ORDERFLOW_FORWARDING_SECRET": secrets.token_hex(32)}
    )
    assert settings.database_url == url


def test_the_workers_settings_are_valid(rendered: Manifests) -> None:
    settings = worker_settings(rendered, "worker-2")
    guard = Guard.from_settings(settings)  # a worker with these settings serves the API
    assert guard.verifier is not None
    assert guard.verifier.algorithms == ["RS256", "ES256"]
    assert settings.canonical_url == "http://worker-2.orderflow-workers:6066"
    mounts = {m["name"]: m["mountPath"] for m in worker_container(rendered)["volumeMounts"]}
    assert str(settings.data_dir) == mounts["data"] == DATA_DIR
    assert settings.web_host == "0.0.0.0"
    assert settings.processing_guarantee.value == "at_least_once"
    assert not settings.database_migrate, "the init container migrates, not the worker"


def test_base_and_production_replication(base: Manifests, production: Manifests) -> None:
    small = worker_settings(base)
    assert small.topic_replication_factor == 1
    assert len(small.bootstrap_servers.split(",")) == 1
    settings = worker_settings(production)
    assert settings.topic_replication_factor == 3
    assert settings.topic_min_insync_replicas == 2
    assert len(settings.bootstrap_servers.split(",")) == 3


# -- the worker pods ----------------------------------------------------------------------


def test_probes_ports_and_services_agree(rendered: Manifests) -> None:
    statefulset = rendered["StatefulSet/worker"]
    container = worker_container(rendered)
    assert [p["name"] for p in container["ports"]] == ["http"]
    assert container["ports"][0]["containerPort"] == worker_settings(rendered).web_port
    # /readyz without ?strict: a worker stays in the Service through rebalances.
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert statefulset["spec"]["serviceName"] == "orderflow-workers"
    assert rendered["Service/orderflow-workers"]["spec"]["clusterIP"] == "None"
    assert rendered["Service/orderflow"]["spec"]["ports"][0]["targetPort"] == "http"
    workers = statefulset["spec"]["template"]["metadata"]["labels"]
    assert matches(statefulset["spec"]["selector"]["matchLabels"], workers)
    for service in ("Service/orderflow", "Service/orderflow-workers"):
        selector = rendered[service]["spec"]["selector"]
        assert matches(selector, workers), service


def test_probes_leave_time_for_the_first_recovery(rendered: Manifests) -> None:
    container = worker_container(rendered)
    # Liveness waits until the first table recovery is done (/readyz answers 200), for at
    # least ten minutes: large tables take minutes to recover.
    startup = container["startupProbe"]
    assert startup["httpGet"] == {"path": "/readyz", "port": "http"}
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600
    assert "initialDelaySeconds" not in container["livenessProbe"]
    # One slow answer of a busy event loop is no reason to restart: over a second allowed.
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe].get("timeoutSeconds", 1) > 1, probe
    liveness = container["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 60


def test_the_disruption_budget_covers_the_workers(rendered: Manifests) -> None:
    budget = rendered["PodDisruptionBudget/worker"]["spec"]
    # policy/v1: a budget without a selector protects no pod.
    workers = rendered["StatefulSet/worker"]["spec"]["template"]["metadata"]["labels"]
    assert matches(budget["selector"]["matchLabels"], workers)
    assert budget["maxUnavailable"] == 1


# -- the network policy -------------------------------------------------------------------


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A label selector (matchLabels and matchExpressions) against a set of labels."""
    if not matches(selector.get("matchLabels", {}), labels):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        if operator == "In" and labels.get(key) not in expression["values"]:
            return False
        if operator == "NotIn" and labels.get(key) in expression["values"]:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def admitted(
    rules: list[dict[str, Any]], key: str, pod: dict[str, str], namespace: dict[str, str] | None
) -> set[Any]:
    """The ports a pod (``namespace``: its namespace's labels, None for the policy's own) may
    use under these ingress (key "from") or egress (key "to") rules."""
    ports: set[Any] = set()
    for rule in rules:
        for peer in rule.get(key, [{}]):
            if "ipBlock" in peer:
                continue
            if "namespaceSelector" in peer:
                in_namespace = namespace is not None and selects(
                    peer["namespaceSelector"], namespace
                )
                in_namespace = in_namespace or (
                    namespace is None and peer["namespaceSelector"] == {}
                )
            else:
                in_namespace = namespace is None or peer == {}
            if in_namespace and selects(peer.get("podSelector", {}), pod):
                ports |= {p["port"] for p in rule["ports"]}
    return ports


def test_the_network_policy_admits_only_workers_clients_and_prometheus(
    rendered: Manifests,
) -> None:
    policy = rendered["NetworkPolicy/worker"]["spec"]
    workers = rendered["StatefulSet/worker"]["spec"]["template"]["metadata"]["labels"]
    assert selects(policy["podSelector"], workers)
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    ingress = policy["ingress"]
    other = {"app.kubernetes.io/name": "something-else"}
    # Worker to worker (forwarded queries), on the API port only.
    assert admitted(ingress, "from", workers, None) == {"http"}
    # API clients: the ingress controller's namespace, labelled by the operator, or a pod
    # of this namespace labelled as a client.
    assert admitted(ingress, "from", other, {"orderflow.io/api-access": "true"}) == {"http"}
    assert admitted(ingress, "from", {"orderflow.io/api-client": "true"}, None) == {"http"}
    # Prometheus, from whichever namespace it runs in.
    prometheus = {"app.kubernetes.io/name": "prometheus"}
    assert admitted(ingress, "from", prometheus, {"kubernetes.io/metadata.name": "monitoring"})
    # Nobody else.
    assert admitted(ingress, "from", other, None) == set()
    assert admitted(ingress, "from", other, {"kubernetes.io/metadata.name": "default"}) == set()
    assert admitted(ingress, "from", workers, {"kubernetes.io/metadata.name": "default"}) == set()
    port = worker_container(rendered)["ports"][0]
    assert port["name"] == "http"


def test_the_network_policy_lets_the_workers_reach_what_they_use(rendered: Manifests) -> None:
    egress = rendered["NetworkPolicy/worker"]["spec"]["egress"]
    settings = worker_settings(rendered)
    workers = rendered["StatefulSet/worker"]["spec"]["template"]["metadata"]["labels"]
    dns = {"k8s-app": "kube-dns"}
    assert admitted(egress, "to", dns, {"kubernetes.io/metadata.name": "kube-system"}) >= {53}
    protocols = {
        (p["port"], p["protocol"]) for rule in egress if "to" in rule for p in rule["ports"]
    }
    assert {(53, "UDP"), (53, "TCP")} <= protocols
    # Forwarding to the other workers.
    assert settings.web_port in admitted(egress, "to", workers, None)
    # Every store and service of the settings, at its port (these are outside the manifests).
    anywhere = {p["port"] for rule in egress if "to" not in rule for p in rule["ports"]}
    urls = [
        *(f"kafka://{server}" for server in settings.bootstrap_servers.split(",")),
        settings.database_url,
        settings.elasticsearch_url,
        settings.mongodb_url,
        settings.payment_gateway_url,
        settings.jwt_jwks_url,
    ]
    for url in urls:
        parts = urlsplit(url)
        assert (parts.port or {"https": 443, "http": 80}[parts.scheme]) in anywhere, url


def test_kustomize_leaves_the_foreign_selectors_alone(rendered: Manifests) -> None:
    """The base's labels are added to the matchLabels of every NetworkPolicy selector: the
    selectors of Prometheus and DNS pods are matchExpressions, or they would match nothing."""
    policy = rendered["NetworkPolicy/worker"]["spec"]
    foreign = [
        peer["podSelector"]
        for rule in [*policy["ingress"], *policy["egress"]]
        for peer in rule.get("from", rule.get("to", []))
        if "namespaceSelector" in peer and "podSelector" in peer
    ]
    assert len(foreign) == 2
    for selector in foreign:
        assert "matchLabels" not in selector, selector


def hardened(spec: dict[str, Any], writable: dict[str, set[str]]) -> None:
    """Non-root, read-only root filesystem, no privilege escalation, no capabilities,
    resources set, and a volume at every path each container writes to (by name)."""
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    containers = [*spec.get("initContainers", []), *spec["containers"]]
    assert {c["name"] for c in containers} == set(writable)
    for container in containers:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"])
        assert "memory" in resources["limits"]
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert mounts == writable[container["name"]], container["name"]


def test_the_pods_run_hardened(rendered: Manifests) -> None:
    hardened(pod_spec(rendered), {"worker": {DATA_DIR, "/tmp"}, "migrate": {"/tmp"}})


def test_the_image_runs_as_the_user_the_manifests_name(rendered: Manifests) -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    uid = int(re.search(r"useradd --uid (\d+)", dockerfile).group(1))  # type: ignore[union-attr]
    gid = int(re.search(r"groupadd --gid (\d+)", dockerfile).group(1))  # type: ignore[union-attr]
    assert f"--gid {gid}" in re.search(r"useradd .*", dockerfile).group(0)  # type: ignore[union-attr]
    assert f"ORDERFLOW_DATA_DIR={DATA_DIR}" in dockerfile
    # Numeric (uid:gid): Kubernetes checks runAsNonRoot against the image's USER and cannot
    # when it is a name.
    (user,) = re.findall(r"^USER (.+)$", dockerfile, re.MULTILINE)
    assert user == f"{uid}:{gid}"
    context = pod_spec(rendered)["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"]) == (uid, gid)
    # The data volume is writable by that user's group.
    assert pod_spec(rendered)["securityContext"]["fsGroup"] == gid


def test_the_dockerfile_pins_its_base_image() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    (image,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, re.MULTILINE)
    # An exact Python release (not 3.11 or slim, which move) and the digest of its build.
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", image), image
    stages = re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    assert stages == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]


def test_workers_keep_apart(base: Manifests, production: Manifests) -> None:
    labels = base["StatefulSet/worker"]["spec"]["template"]["metadata"]["labels"]
    preferred = pod_spec(base)["affinity"]["podAntiAffinity"]
    (term,) = preferred["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert matches(term["podAffinityTerm"]["labelSelector"]["matchLabels"], labels)
    # Production: one worker per node, a requirement.
    required = pod_spec(production)["affinity"]["podAntiAffinity"]
    assert "preferredDuringSchedulingIgnoredDuringExecution" not in required
    (rule,) = required["requiredDuringSchedulingIgnoredDuringExecution"]
    assert rule["topologyKey"] == "kubernetes.io/hostname"
    assert matches(rule["labelSelector"]["matchLabels"], labels)


# -- the migration --------------------------------------------------------------------------


def test_each_worker_pod_migrates_the_schema_before_its_worker_starts(
    rendered: Manifests,
) -> None:
    """An init container runs to completion before the pod's worker starts: a worker of a new
    image never runs against the previous schema. No Job: one could not be applied again with
    a new image until the finished one was gone (its pod template is immutable)."""
    (container,) = pod_spec(rendered)["initContainers"]
    worker = worker_container(rendered)
    assert container["image"] == worker["image"]
    assert container["envFrom"] == worker["envFrom"]
    assert container["args"] == ["db", "migrate"]
    result = CliRunner().invoke(main, [*container["args"], "--help"])
    assert result.exit_code == 0, result.output
    assert not [name for name in rendered if name.startswith("Job/")]
    # Pods that start together take turns: each migration runs under an advisory lock
    # (tests/integration/test_intake.py runs concurrent migrators against PostgreSQL).
    assert "pg_advisory_xact_lock" in inspect.getsource(migrate)


# -- production ---------------------------------------------------------------------------


def test_the_scaled_object_is_kedas(production: Manifests) -> None:
    scaled = production["ScaledObject/worker"]
    jsonschema.validate(scaled, SCALED_OBJECT)
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    assert set(trigger["metadata"]) <= KAFKA_TRIGGER_KEYS
    assert set(trigger["metadata"]) >= KAFKA_TRIGGER_REQUIRED


def test_the_keda_schema_refuses_what_the_api_server_would(production: Manifests) -> None:
    scaled = production["ScaledObject/worker"]
    for path, value in (
        (("spec", "maxReplicas"), 12),  # the HPA's name, not KEDA's
        (("spec", "triggers", 0, "metadata", "lagThreshold"), 2000),  # not a string
        (("spec", "advanced", "horizontalPodAutoscalerConfig", "behavior", "down"), {}),
    ):
        broken = yaml.safe_load(yaml.safe_dump(scaled))
        *parents, last = path
        node = broken
        for key in parents:
            node = node[key]
        node[last] = value
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, SCALED_OBJECT)


def test_production_scales_on_the_workers_consumer_lag(production: Manifests) -> None:
    scaled = production["ScaledObject/worker"]["spec"]
    assert scaled["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": "worker",
    }
    settings = worker_settings(production)
    assert scaled["minReplicaCount"] >= 3
    # More workers than partitions would own nothing.
    assert scaled["maxReplicaCount"] <= settings.topic_partitions
    (trigger,) = scaled["triggers"]
    metadata = trigger["metadata"]
    # The lag of the workers' own consumer group (Faust's group is the app id), read from
    # the brokers the workers use: nothing names the namespace.
    assert metadata["consumerGroup"] == settings.app_id
    assert metadata["bootstrapServers"] == settings.bootstrap_servers
    assert "topic" not in metadata, "every topic of the group counts"
    assert int(metadata["lagThreshold"]) > 0
    assert metadata["offsetResetPolicy"] == "earliest"
    # Every change of size is a rebalance: scaling down waits and goes one worker at a time.
    behavior = scaled["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    down = behavior["scaleDown"]
    assert down["stabilizationWindowSeconds"] >= 300
    assert down["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 300}]
    assert behavior["scaleUp"]["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 120}]
    # KEDA makes the one HorizontalPodAutoscaler; a second would fight it.
    assert not [name for name in production if name.startswith("HorizontalPodAutoscaler/")]
    # The autoscaler owns the number of workers; an apply must not reset it.
    assert "replicas" not in production["StatefulSet/worker"]["spec"]


def test_no_manifest_names_the_namespace() -> None:
    """The kustomizations set the namespace: a manifest that names one would be wrong in any
    other (the HPA's metric selector once did)."""
    for path in K8S.rglob("*.yaml"):
        if path.name == "kustomization.yaml" or path == BASE / "namespace.yaml":
            continue
        text = path.read_text()
        assert not re.search(r"^\s*namespace:|namespace=", text, re.MULTILINE), path


def test_production_runs_a_released_image(base: Manifests, production: Manifests) -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert images(production) == {f"orderflow:{version}"}
    # The local variant runs the image built on the machine (docker build -t orderflow:local).
    assert images(base) == {"orderflow:local"}
    for manifests in (base, production):
        for image in images(manifests):
            name, _, tag = image.rpartition(":")
            assert name, image
            assert "/" not in tag, image
            assert tag != "latest", image
    # The base sets no image: each variant's kustomization has the images entry the
    # operator edits (kustomize edit set image orderflow=REGISTRY/orderflow:TAG).
    assert "images" not in yaml.safe_load((BASE / "kustomization.yaml").read_text())
    (entry,) = yaml.safe_load((PRODUCTION / "kustomization.yaml").read_text())["images"]
    assert entry["name"] == "orderflow"
    assert entry.get("newTag", "latest") != "latest" or "digest" in entry


def images(manifests: Manifests) -> set[str]:
    return {
        container["image"]
        for container in [
            *pod_spec(manifests).get("initContainers", []),
            *pod_spec(manifests)["containers"],
        ]
    }
