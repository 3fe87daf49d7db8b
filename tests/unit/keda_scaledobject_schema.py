"""The structure of KEDA's ScaledObject (keda.sh/v1alpha1), as a JSON Schema.

kubernetes-validate knows only the Kubernetes API's own kinds, and no package on PyPI ships
KEDA's CRD schema (cloudcoil-models-keda has pydantic models that ignore unknown fields). This
is the part of the CRD's openAPIV3Schema (config/crd/bases/keda.sh_scaledobjects.yaml in
kedacore/keda, 2.12 to 2.17) that orderflow uses, written out by hand with the CRD's field
names and types, and closed (additionalProperties: false) like a strict API server, so that a
misspelt or misplaced field fails. Trigger metadata is a map of strings in the CRD: a number
there (lagThreshold: 2000) is refused by the API server, and here.
"""

from __future__ import annotations

from typing import Any

_INT: dict[str, Any] = {"type": "integer", "minimum": 0}


def _closed(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


_SCALING_RULES = _closed(
    {
        "stabilizationWindowSeconds": {"type": "integer", "minimum": 0, "maximum": 3600},
        "selectPolicy": {"enum": ["Max", "Min", "Disabled"]},
        "policies": {
            "type": "array",
            "items": _closed(
                {
                    "type": {"enum": ["Pods", "Percent"]},
                    "value": {"type": "integer", "minimum": 1},
                    "periodSeconds": {"type": "integer", "minimum": 1, "maximum": 1800},
                },
                ("type", "value", "periodSeconds"),
            ),
        },
        "tolerance": {"type": ["integer", "string"]},
    }
)

SCALED_OBJECT: dict[str, Any] = _closed(
    {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                "namespace": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            "required": ["name"],
            "additionalProperties": False,
        },
        "spec": _closed(
            {
                "scaleTargetRef": _closed(
                    {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "name": {"type": "string"},
                        "envSourceContainerName": {"type": "string"},
                    },
                    ("name",),
                ),
                "pollingInterval": _INT,
                "cooldownPeriod": _INT,
                "initialCooldownPeriod": _INT,
                "idleReplicaCount": _INT,
                "minReplicaCount": _INT,
                "maxReplicaCount": _INT,
                "fallback": _closed(
                    {
                        "failureThreshold": _INT,
                        "replicas": _INT,
                        "behavior": {"type": "string"},
                    },
                    ("failureThreshold", "replicas"),
                ),
                "advanced": _closed(
                    {
                        "restoreToOriginalReplicaCount": {"type": "boolean"},
                        "horizontalPodAutoscalerConfig": _closed(
                            {
                                "name": {"type": "string"},
                                "behavior": _closed(
                                    {"scaleUp": _SCALING_RULES, "scaleDown": _SCALING_RULES}
                                ),
                            }
                        ),
                        "scalingModifiers": {"type": "object"},
                    }
                ),
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": _closed(
                        {
                            "type": {"type": "string"},
                            "name": {"type": "string"},
                            "metadata": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                            },
                            "authenticationRef": _closed(
                                {"name": {"type": "string"}, "kind": {"type": "string"}},
                                ("name",),
                            ),
                            "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                            "useCachedMetrics": {"type": "boolean"},
                        },
                        ("type", "metadata"),
                    ),
                },
            },
            ("scaleTargetRef", "triggers"),
        ),
    },
    ("apiVersion", "kind", "metadata", "spec"),
)

# The Kafka scaler's metadata keys (https://keda.sh/docs/latest/scalers/apache-kafka/), and
# those it cannot do without.
KAFKA_TRIGGER_KEYS = frozenset(
    {
        "bootstrapServers",
        "bootstrapServersFromEnv",
        "consumerGroup",
        "consumerGroupFromEnv",
        "topic",
        "topicFromEnv",
        "lagThreshold",
        "activationLagThreshold",
        "offsetResetPolicy",
        "allowIdleConsumers",
        "excludePersistentLag",
        "scaleToZeroOnInvalidOffset",
        "limitToPartitionsWithLag",
        "partitionLimitation",
        "ensureEvenDistributionOfPartitions",
        "version",
        "sasl",
        "tls",
        "unsafeSsl",
    }
)
KAFKA_TRIGGER_REQUIRED = frozenset({"bootstrapServers", "consumerGroup", "lagThreshold"})
