"""The Kubernetes manifests hang together, and what they configure is a valid Settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from orderflow.auth.guard import Guard
from orderflow.settings import Settings

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"


def documents() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text()):
            found[f"{document['kind']}/{document['metadata']['name']}"] = document
    return found


def test_the_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def test_the_workers_settings_are_valid() -> None:
    manifests = documents()
    worker = manifests["StatefulSet/worker"]["spec"]["template"]["spec"]["containers"][0]
    env = {
        **manifests["ConfigMap/orderflow"]["data"],
        **manifests["Secret/orderflow"]["stringData"],
        **{
            e["name"]: e["value"].replace("$(POD_NAME)", "worker-0")
            for e in worker["env"]
            if e["name"].startswith("ORDERFLOW_")
        },
    }
    settings = Settings.from_env(env)
    guard = Guard.from_settings(settings)  # a worker with these settings serves the API
    assert guard.verifier is not None
    assert guard.verifier.algorithms == ["RS256", "ES256"]
    assert settings.canonical_url == "http://worker-0.orderflow-workers:6066"
    assert settings.topic_replication_factor == 3
    assert str(settings.data_dir) == worker["volumeMounts"][0]["mountPath"]


def test_probes_ports_and_services_agree() -> None:
    manifests = documents()
    statefulset = manifests["StatefulSet/worker"]
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    assert [p["name"] for p in container["ports"]] == ["http"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert statefulset["spec"]["serviceName"] == "orderflow-workers"
    headless = manifests["Service/orderflow-workers"]["spec"]
    assert headless["clusterIP"] == "None"
    assert manifests["Service/orderflow"]["spec"]["ports"][0]["targetPort"] == "http"
    assert manifests["PodDisruptionBudget/worker"]["spec"]["maxUnavailable"] == 1
