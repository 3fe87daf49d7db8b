"""The monitoring configuration in deploy/: Prometheus scrape config, alert rules, dashboard.

The Prometheus files are checked with promtool (Debian package ``prometheus``), the alert
rules are unit-tested with ``promtool test rules``, and every metric name that a rule or a
dashboard query uses must be one the workers export (METRICS, kept equal to
orderflow.observability.metrics by a test below).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from itertools import combinations
from pathlib import Path

import pytest
from prometheus_client.metrics import MetricWrapperBase

from orderflow.observability import metrics

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "deploy" / "prometheus"
CONFIG = PROMETHEUS / "prometheus.yml"
ALERTS = PROMETHEUS / "alerts.yml"
ALERTS_TEST = PROMETHEUS / "alerts_test.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "orderflow.json"

# name: (type, labels) of every metric a worker serves on GET /metrics.
METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "orderflow_orders_placed_total": ("counter", ()),
    "orderflow_orders_confirmed_total": ("counter", ()),
    "orderflow_orders_rejected_total": ("counter", ("reason",)),
    "orderflow_orders_cancelled_total": ("counter", ()),
    "orderflow_order_value_minor_units": ("histogram", ("currency",)),
    "orderflow_saga_duration_seconds": ("histogram", ("outcome",)),
    "orderflow_sagas_in_flight": ("gauge", ()),
    "orderflow_stock_reservations_total": ("counter", ("outcome",)),
    "orderflow_stock_releases_total": ("counter", ()),
    "orderflow_stock_on_hand": ("gauge", ("sku",)),
    "orderflow_payments_total": ("counter", ("outcome",)),
    "orderflow_notifications_sent_total": ("counter", ("kind", "channel")),
    "orderflow_notifications_skipped_total": ("counter", ("kind",)),
    "orderflow_circuit_breaker_state": ("gauge", ("breaker",)),
    "orderflow_circuit_breaker_opened_total": ("counter", ("breaker",)),
    "orderflow_events_processed_total": ("counter", ("handler",)),
    "orderflow_event_processing_seconds": ("histogram", ("handler",)),
    "orderflow_handler_retries_total": ("counter", ("handler",)),
    "orderflow_dead_lettered_total": ("counter", ("handler", "error_type")),
    "orderflow_consumer_lag_messages": ("gauge", ("topic", "partition")),
    "orderflow_table_keys": ("gauge", ("table",)),
    "orderflow_outbox_pending_rows": ("gauge", ()),
    "orderflow_outbox_oldest_pending_seconds": ("gauge", ()),
    "orderflow_outbox_failed_rows": ("gauge", ()),
    "orderflow_projection_documents_total": ("counter", ("projection", "result")),
    "orderflow_projection_batch_seconds": ("histogram", ("projection",)),
    "orderflow_read_side_checked_total": ("counter", ("projection",)),
    "orderflow_read_side_behind_documents": ("gauge", ("projection",)),
    "orderflow_read_side_republished_total": ("counter", ("projection",)),
    "orderflow_search_duration_seconds": ("histogram", ("index",)),
    "orderflow_http_requests_total": ("counter", ("route", "method", "status")),
    "orderflow_http_request_duration_seconds": ("histogram", ("route", "method")),
}
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")
METRIC_NAME = re.compile(r"orderflow_[a-z_]+")

# Alerts the runbook relies on, and those alerts_test.yml must show both firing and silent.
REQUIRED_ALERTS = {
    "OrderflowWorkerDown",
    "OrderflowNoWorkerUp",
    "OrderflowConsumerLagHigh",
    "OrderflowSagasStuck",
    "OrderflowSagasInFlightHigh",
    "OrderflowRejectionRatioHigh",
    "OrderflowDeadLettered",
    "OrderflowCircuitBreakerOpen",
    "OrderflowOutboxLagging",
    "OrderflowOutboxFailedRows",
    "OrderflowHttp5xxRatioHigh",
    "OrderflowReadSideBehind",
}
UNIT_TESTED_ALERTS = {
    "OrderflowCircuitBreakerOpen",
    "OrderflowDeadLettered",
    "OrderflowOutboxLagging",
    "OrderflowReadSideBehind",
}

# Grafana's interval variables, replaced by durations so promtool can parse dashboard queries.
GRAFANA_INTERVALS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}

# Debian's prometheus package is built without Kubernetes service discovery (prometheus#5053).
DEBIAN_WITHOUT_KUBERNETES_SD = "field kubernetes_sd_configs not found in type config.ScrapeConfig"


# -- helpers -----------------------------------------------------------------------------


def promtool(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool is not installed: it comes with the Debian package `prometheus` "
            "(apt-get install prometheus)",
            pytrace=False,
        )
    return subprocess.run(
        [path, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n{result.stdout}{result.stderr}"


def rule_blocks(text: str) -> dict[str, str]:
    """The text of each rule of alerts.yml, by alert name (each starts with "- alert:")."""
    blocks: dict[str, str] = {}
    starts = list(re.finditer(r"^\s*- alert: *(\S+) *$", text, re.MULTILINE))
    for start, end in zip(starts, [*starts[1:], None], strict=True):
        block = text[start.start() : end.start() if end else len(text)]
        block = re.split(r"^\s*- name:", block, flags=re.MULTILINE)[0]
        assert start[1] not in blocks, f"alert {start[1]} is defined twice"
        blocks[start[1]] = block
    return blocks


def expr_of(block: str) -> str:
    """The expr of a rule: inline (plain or quoted) or a block scalar (| or >)."""
    lines = block.splitlines()
    for i, line in enumerate(lines):
        found = re.match(r"^( *)expr: *(.*)$", line)
        if not found:
            continue
        value = found[2].strip()
        if value[:1] not in ("|", ">"):
            return value.strip("'\"")
        body = []
        for following in lines[i + 1 :]:
            if following.strip() and len(following) - len(following.lstrip()) <= len(found[1]):
                break
            body.append(following.strip())
        return "\n".join(body).strip()
    raise AssertionError(f"no expr in rule:\n{block}")


def alert_exprs() -> dict[str, str]:
    return {name: expr_of(block) for name, block in rule_blocks(ALERTS.read_text()).items()}


def unknown_metrics(expr: str) -> set[str]:
    """Names in expr that are not series a worker exports (histograms only as _bucket etc.)."""
    histograms = {name for name, (kind, _) in METRICS.items() if kind == "histogram"}
    series = (set(METRICS) - histograms) | {h + s for h in histograms for s in HISTOGRAM_SERIES}
    return set(METRIC_NAME.findall(expr)) - series


def referenced_metrics(exprs: list[str]) -> set[str]:
    names = set()
    for expr in exprs:
        for name in METRIC_NAME.findall(expr):
            for suffix in HISTOGRAM_SERIES:
                if name.endswith(suffix) and name[: -len(suffix)] in METRICS:
                    name = name[: -len(suffix)]
            names.add(name)
    return names


def load_dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def dashboard_exprs(dashboard: dict) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def check_rules_file(tmp_path: Path, exprs: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """promtool check rules on recording rules made of exprs (JSON is YAML)."""
    rules = [{"record": f"dashboard:{name}", "expr": expr} for name, expr in exprs.items()]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    return promtool("check", "rules", str(path))


# -- the metric list ---------------------------------------------------------------------


def test_metric_list_matches_what_the_workers_export() -> None:
    exported = {}
    for wrapper in vars(metrics).values():
        if isinstance(wrapper, MetricWrapperBase):
            name = wrapper._name + ("_total" if wrapper._type == "counter" else "")
            exported[name] = (wrapper._type, tuple(wrapper._labelnames))
    assert exported == METRICS


def test_unknown_metrics_are_reported() -> None:
    assert unknown_metrics("rate(orderflow_saga_duration_seconds_bucket[5m])") == set()
    assert unknown_metrics("orderflow_saga_duration_seconds") == {"orderflow_saga_duration_seconds"}
    assert unknown_metrics("orderflow_sagas_in_flight_count + orderflow_orders_placed") == {
        "orderflow_sagas_in_flight_count",
        "orderflow_orders_placed",
    }


# -- prometheus.yml ----------------------------------------------------------------------


def test_scrape_config_passes_promtool(tmp_path: Path) -> None:
    result = promtool("check", "config", str(CONFIG))
    if result.returncode != 0 and DEBIAN_WITHOUT_KUBERNETES_SD in output(result):
        # Debian's promtool cannot parse the Kubernetes job's kubernetes_sd_configs (only
        # that): check everything else, the job's relabelling included, without it.
        stripped = re.sub(
            r"^( +)kubernetes_sd_configs:\n(?:\1 .*\n)+", "", CONFIG.read_text(), flags=re.M
        )
        assert not re.search(r"^ *kubernetes_sd_configs:", stripped, re.MULTILINE)
        (tmp_path / "prometheus.yml").write_text(stripped)
        shutil.copy(ALERTS, tmp_path / "alerts.yml")
        result = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, output(result)
    assert re.search(r"alerts\.yml\s+SUCCESS: [1-9]\d* rules found", output(result))


def test_scrape_config_has_local_and_kubernetes_jobs() -> None:
    text = CONFIG.read_text()
    assert not re.search(r"^\s*#\s*-? *job_name", text, re.MULTILINE), "commented-out job"
    jobs = re.split(r"^  - job_name: *", text, flags=re.MULTILINE)[1:]
    by_name = {job.split("\n", 1)[0].strip(): job for job in jobs}
    assert set(by_name) == {"orderflow", "orderflow-kubernetes"}

    local = by_name["orderflow"]
    assert "127.0.0.1:6066" in local
    assert "127.0.0.1:6067" in local

    kubernetes = re.sub(r"#.*", "", by_name["orderflow-kubernetes"])
    assert re.search(r"kubernetes_sd_configs:\n\s+- role: pod\n", kubernetes)
    keep_label = re.search(
        r"source_labels: \[__meta_kubernetes_pod_label_app_kubernetes_io_name\]\n"
        r"\s+regex: orderflow\n\s+action: keep",
        kubernetes,
    )
    keep_port = re.search(
        r"source_labels: \[__meta_kubernetes_pod_container_port_name\]\n"
        r"\s+regex: http\n\s+action: keep",
        kubernetes,
    )
    assert keep_label, "pods must be kept by app.kubernetes.io/name=orderflow"
    assert keep_port, "only the container port named http must be scraped"
    assert re.search(r"^rule_files:\n\s+- alerts\.yml$", text, re.MULTILINE)


# -- alerts.yml --------------------------------------------------------------------------


def test_alert_rules_pass_promtool() -> None:
    result = promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, output(result)
    found = re.search(r"SUCCESS: (\d+) rules found", result.stdout)
    assert found, output(result)
    # Every rule promtool loads is one the other tests here read.
    assert int(found[1]) == len(alert_exprs())


def test_alert_rules_cover_the_runbook() -> None:
    missing = REQUIRED_ALERTS - set(alert_exprs())
    assert not missing, f"alerts missing from alerts.yml: {missing}"


def test_every_alert_has_for_severity_summary_and_description() -> None:
    for name, block in rule_blocks(ALERTS.read_text()).items():
        assert re.search(r"^\s+for: \d+[smh]$", block, re.MULTILINE), f"{name}: no for:"
        assert re.search(r"^\s+severity: (critical|warning)$", block, re.MULTILINE), name
        assert re.search(r"^\s+summary: \S", block, re.MULTILINE), f"{name}: no summary"
        assert re.search(r"^\s+description: \S", block, re.MULTILINE), f"{name}: no description"


def test_alert_rules_use_only_exported_metrics() -> None:
    exprs = alert_exprs()
    assert all(exprs.values())
    for name, expr in exprs.items():
        assert not unknown_metrics(expr), f"{name} uses unknown metrics: {unknown_metrics(expr)}"
    assert len(referenced_metrics(list(exprs.values()))) >= 10


def test_alert_rules_unit_tests_pass() -> None:
    result = promtool("test", "rules", str(ALERTS_TEST), cwd=PROMETHEUS)
    assert result.returncode == 0, output(result)
    assert "SUCCESS" in result.stdout


def test_alert_unit_tests_expect_firing_and_silence() -> None:
    cases = re.findall(
        r"alertname: *(\S+)\n\s+exp_alerts:( *\[\])?", ALERTS_TEST.read_text(), re.MULTILINE
    )
    firing = {name for name, empty in cases if not empty}
    silent = {name for name, empty in cases if empty}
    assert not UNIT_TESTED_ALERTS - firing, "no case expects these alerts to fire"
    assert not UNIT_TESTED_ALERTS - silent, "no case expects these alerts to stay silent"


@pytest.mark.parametrize("alert", sorted(UNIT_TESTED_ALERTS))
def test_alert_unit_tests_fail_if_the_alert_never_fires(tmp_path: Path, alert: str) -> None:
    # The same rules with this alert's expr replaced by one that matches nothing.
    text = ALERTS.read_text()
    block = rule_blocks(text)[alert]
    expr_line = re.search(r"^( *)expr:.*$", block, re.MULTILINE)
    assert expr_line
    indent = len(expr_line[1])
    lines = block.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("expr:"))
    end = start + 1
    while end < len(lines) and (
        not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent
    ):
        end += 1
    mutated = "".join([*lines[:start], " " * indent + "expr: vector(1) == 2\n", *lines[end:]])
    (tmp_path / "alerts.yml").write_text(text.replace(block, mutated))
    shutil.copy(ALERTS_TEST, tmp_path / "alerts_test.yml")
    assert promtool("check", "rules", str(tmp_path / "alerts.yml")).returncode == 0

    result = promtool("test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert result.returncode != 0
    assert f"alertname: {alert}," in output(result)


# -- the Grafana dashboard ---------------------------------------------------------------


def test_dashboard_has_the_grafana_fields() -> None:
    dashboard = load_dashboard()
    for field in ("title", "uid", "schemaVersion", "panels", "templating", "time"):
        assert field in dashboard, field
    assert dashboard["uid"] == "orderflow"
    assert dashboard["schemaVersion"] == 39
    assert dashboard["time"] == {"from": "now-1h", "to": "now"}
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"


def test_dashboard_panels_have_ids_datasources_and_targets() -> None:
    panels = load_dashboard()["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    graphs = [panel for panel in panels if panel["type"] != "row"]  # rows only group
    assert len(graphs) >= 10
    for panel in graphs:
        title = panel["title"]
        assert panel["type"] in ("timeseries", "stat"), title
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, title
        assert panel["targets"], title
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), title
        for target in panel["targets"]:
            assert target["expr"].strip(), title
            assert target.get("datasource", panel["datasource"]) == panel["datasource"], title
    for panel in panels:
        if panel["type"] == "row":
            assert panel["gridPos"]["w"] == 24
            assert not panel.get("collapsed"), "panels of a collapsed row are nested"


def test_dashboard_layout_fits_24_columns_without_overlaps() -> None:
    cells: dict[int, set[tuple[int, int]]] = {}
    for panel in load_dashboard()["panels"]:
        grid = panel["gridPos"]
        assert min(grid["x"], grid["y"]) >= 0, panel["title"]
        assert min(grid["w"], grid["h"]) > 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells[panel["id"]] = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
    for (a, cells_a), (b, cells_b) in combinations(cells.items(), 2):
        assert not cells_a & cells_b, f"panels {a} and {b} overlap"


def test_dashboard_uses_only_exported_metrics() -> None:
    exprs = dashboard_exprs(load_dashboard())
    for expr in exprs:
        assert not unknown_metrics(expr), f"unknown metrics in {expr!r}"
        assert "$" not in expr.replace("$__rate_interval", ""), expr


def test_dashboard_shows_what_an_operator_needs() -> None:
    used = referenced_metrics(dashboard_exprs(load_dashboard()))
    needed = {
        "orderflow_orders_placed_total",
        "orderflow_orders_confirmed_total",
        "orderflow_orders_rejected_total",
        "orderflow_orders_cancelled_total",
        "orderflow_saga_duration_seconds",
        "orderflow_sagas_in_flight",
        "orderflow_consumer_lag_messages",
        "orderflow_dead_lettered_total",
        "orderflow_circuit_breaker_state",
        "orderflow_outbox_pending_rows",
        "orderflow_outbox_oldest_pending_seconds",
        "orderflow_http_requests_total",
        "orderflow_http_request_duration_seconds",
        "orderflow_events_processed_total",
        "orderflow_event_processing_seconds",
    }
    assert not needed - used, f"not on the dashboard: {needed - used}"
    exprs = "\n".join(dashboard_exprs(load_dashboard()))
    for quantile in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({quantile}, sum by (le, outcome) (rate(" in exprs
    assert "sum by (reason) (rate(orderflow_orders_rejected_total" in exprs


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    exprs = {}
    for panel in load_dashboard()["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, duration in GRAFANA_INTERVALS.items():
                expr = expr.replace(variable, duration)
            exprs[f"panel{panel['id']}_{target['refId']}"] = expr
    result = check_rules_file(tmp_path, exprs)
    assert result.returncode == 0, output(result)
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


def test_promql_check_rejects_a_broken_query(tmp_path: Path) -> None:
    result = check_rules_file(tmp_path, {"broken": "sum(rate(orderflow_orders_placed_total[5m])"})
    assert result.returncode != 0
