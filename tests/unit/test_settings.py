from pathlib import Path

import pytest

from orderflow.app import create_app
from orderflow.settings import ProcessingGuarantee, Settings, SettingsError


def test_defaults_point_at_the_local_infrastructure() -> None:
    settings = Settings.from_env({})
    assert settings.broker_url == "kafka://127.0.0.1:9092"
    assert settings.store == "rocksdb://"
    assert settings.processing_guarantee is ProcessingGuarantee.AT_LEAST_ONCE
    assert settings.canonical_url == "http://127.0.0.1:6066"


def test_every_variable_is_parsed_to_its_type() -> None:
    settings = Settings.from_env(
        {
            "ORDERFLOW_APP_ID": "orders-eu",
            "ORDERFLOW_BROKER_URL": "kafka://k1:9092;k2:9093",
            "ORDERFLOW_TOPIC_PREFIX": "eu.",
            "ORDERFLOW_TOPIC_PARTITIONS": "12",
            "ORDERFLOW_TOPIC_REPLICATION_FACTOR": "3",
            "ORDERFLOW_TOPIC_MIN_INSYNC_REPLICAS": "2",
            "ORDERFLOW_STORE": "memory://",
            "ORDERFLOW_DATA_DIR": "/var/lib/orderflow",
            "ORDERFLOW_WEB_HOST": "0.0.0.0",
            "ORDERFLOW_WEB_PORT": "8080",
            "ORDERFLOW_ADVERTISED_HOST": "worker-0.workers",
            "ORDERFLOW_PROCESSING_GUARANTEE": "EXACTLY_ONCE",
            "ORDERFLOW_SESSION_TIMEOUT": "12.5",
            "ORDERFLOW_DATABASE_URL": "postgresql://u:p@db:5432/orders",
            "ORDERFLOW_ELASTICSEARCH_URL": "https://search:9200",
            "ORDERFLOW_MONGODB_URL": "mongodb://docs:27017/orders",
            "ORDERFLOW_LOG_LEVEL": "warning",
        }
    )
    assert settings.broker_url == "kafka://k1:9092;kafka://k2:9093"
    assert settings.topic_partitions == 12
    assert settings.topic_replication_factor == 3
    assert settings.topic_min_insync_replicas == 2
    assert settings.data_dir == Path("/var/lib/orderflow")
    assert settings.web_port == 8080
    assert settings.processing_guarantee is ProcessingGuarantee.EXACTLY_ONCE
    assert settings.session_timeout == 12.5
    assert settings.log_level == "WARNING"
    assert settings.canonical_url == "http://worker-0.workers:8080"
    assert settings.topic("orders.commands") == "eu.orders.commands"


def test_a_wildcard_bind_address_is_not_advertised() -> None:
    settings = Settings.from_env({"ORDERFLOW_WEB_HOST": "0.0.0.0", "ORDERFLOW_WEB_PORT": "7000"})
    assert settings.canonical_url == "http://127.0.0.1:7000"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("ORDERFLOW_WEB_PORT", "http", "an integer from 1 to 65535"),
        ("ORDERFLOW_WEB_PORT", "70000", "an integer from 1 to 65535"),
        ("ORDERFLOW_TOPIC_PARTITIONS", "0", "an integer from 1 to 1024"),
        ("ORDERFLOW_BROKER_URL", "kafka://nohostport", "kafka://HOST:PORT"),
        ("ORDERFLOW_BROKER_URL", "kafka://k1:99999", "kafka://HOST:PORT"),
        ("ORDERFLOW_STORE", "redis://", "rocksdb://"),
        ("ORDERFLOW_PROCESSING_GUARANTEE", "twice", "at_least_once, exactly_once"),
        ("ORDERFLOW_DATABASE_URL", "mysql://db/orders", "postgresql://HOST:PORT"),
        ("ORDERFLOW_ELASTICSEARCH_URL", "search:9200", "http://HOST:PORT"),
        ("ORDERFLOW_MONGODB_URL", "mongodb://:27017", "mongodb://HOST:PORT"),
        ("ORDERFLOW_SESSION_TIMEOUT", "1", "seconds from 6 to 300"),
        ("ORDERFLOW_LOG_LEVEL", "loud", "debug, info, warning, error"),
        ("ORDERFLOW_APP_ID", "orders app", "letters, digits"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_expected_form(
    variable: str, value: str, expected: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({variable: value})
    message = str(raised.value)
    assert f"{variable}={value!r}" in message
    assert expected in message


def test_all_problems_are_reported_together() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"ORDERFLOW_WEB_PORT": "x", "ORDERFLOW_STORE": "y"})
    assert len(raised.value.problems) == 2


def test_min_insync_replicas_cannot_exceed_the_replication_factor() -> None:
    assert Settings().topic_min_insync_replicas == 0  # the broker's default
    with pytest.raises(SettingsError, match=r"TOPIC_MIN_INSYNC_REPLICAS=2: expected at most"):
        Settings.from_env({"ORDERFLOW_TOPIC_MIN_INSYNC_REPLICAS": "2"})
    with pytest.raises(SettingsError, match=r"REPLICATION_FACTOR \(2\)"):
        Settings.from_env(
            {
                "ORDERFLOW_TOPIC_REPLICATION_FACTOR": "2",
                "ORDERFLOW_TOPIC_MIN_INSYNC_REPLICAS": "3",
            }
        )


def test_a_misspelt_variable_is_an_error_not_a_silent_default() -> None:
    with pytest.raises(SettingsError, match="ORDERFLOW_WEB_PRT: unknown setting"):
        Settings.from_env({"ORDERFLOW_WEB_PRT": "8080"})


def test_infrastructure_variables_are_not_mistaken_for_settings() -> None:
    settings = Settings.from_env({"ORDERFLOW_KAFKA_PORT": "19092", "ORDERFLOW_KEEP_INFRA": "1"})
    assert settings == Settings()


def test_settings_round_trip_through_the_environment() -> None:
    settings = Settings.from_env(
        {"ORDERFLOW_WEB_PORT": "7001", "ORDERFLOW_PROCESSING_GUARANTEE": "exactly_once"}
    )
    assert Settings.from_env(settings.as_env()) == settings


def test_the_topic_prefix_alone_keeps_a_deployment_apart() -> None:
    """Faust names the consumer group and the tables' changelog topics after the app id: the
    app id follows the prefix unless it is given."""
    assert Settings.from_env({}).app_id == "orderflow"
    assert Settings.from_env({"ORDERFLOW_TOPIC_PREFIX": "eu."}).app_id == "eu.orderflow"
    assert Settings.from_env({"ORDERFLOW_TOPIC_PREFIX": "staging-"}).app_id == "staging-orderflow"
    given = {"ORDERFLOW_TOPIC_PREFIX": "eu.", "ORDERFLOW_APP_ID": "orders-eu"}
    assert Settings.from_env(given).app_id == "orders-eu"


def test_a_prefix_that_makes_no_app_id_says_so() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"ORDERFLOW_TOPIC_PREFIX": ".eu"})
    (problem,) = raised.value.problems
    assert "ORDERFLOW_TOPIC_PREFIX='.eu'" in problem
    assert "ORDERFLOW_APP_ID" in problem
    assert Settings.from_env({"ORDERFLOW_TOPIC_PREFIX": ".eu", "ORDERFLOW_APP_ID": "eu"})


def test_two_deployments_with_different_prefixes_share_no_group_or_changelog() -> None:
    apps = [
        create_app(
            Settings.from_env(
                {
                    "ORDERFLOW_TOPIC_PREFIX": prefix,
                    "ORDERFLOW_STORE": "memory://",
                    "ORDERFLOW_JWT_SECRET": "k" * 32,
                }
            )
        )
        for prefix in ("blue.", "green.")
    ]
    groups = [app.conf.id for app in apps]
    assert groups == ["blue.orderflow", "green.orderflow"]
    changelogs = [
        {table.changelog_topic.get_topic_name() for table in app.tables.values()} for app in apps
    ]
    assert changelogs[0]
    assert not changelogs[0] & changelogs[1]
    assert all(name.startswith("blue.orderflow-") for name in changelogs[0])
    # ... and their own topics carry the prefix.
    for app, prefix in zip(apps, ("blue.", "green."), strict=True):
        assert all(name.startswith(prefix) for t in app.bus.all() for name in t.topics)
