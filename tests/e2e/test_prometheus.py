"""The real Prometheus (Debian's `prometheus`) with deploy/prometheus's
configuration pointed at the running shop: it scrapes every service, finds a
request rate, loads every alert, and answers every query of the Grafana
dashboard. Skipped where Prometheus is not installed, unless CI is set.
Before it, what a scrape finds under the real server: every worker's share,
merged, a killed worker's gauges gone and its counts kept."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from launcher import free_port
from tests.metrics import samples

from .api_client import TIMEOUT
from .services import Shop, StartService, descendants, wait_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]
CONFIG = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "shop.json"
SERVICES = ("users", "beers", "orders")
# Bounds, not expectations: a loaded machine may take a while, a broken set-up never ends.
START_SECONDS = 60
SCRAPE_SECONDS = 90


@pytest.fixture(scope="module")
def prometheus(shop: Shop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Prometheus on a free port of 127.0.0.1, scraping the shop every second; its URL."""
    binary = shutil.which("prometheus")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("prometheus is not installed (apt-get install prometheus)")
        pytest.skip("prometheus is not installed (apt-get install prometheus)")
    folder = tmp_path_factory.mktemp("prometheus")
    config = pointed_at(shop, folder)
    port = free_port()
    log = (folder / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}"]
        + [f"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_or_fail(lambda: ready(url, process), START_SECONDS, "Prometheus to start", folder)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def pointed_at(shop: Shop, folder: Path) -> Path:
    """A copy of prometheus.yml (and its alerts) whose jobs scrape the shop's
    services every second."""
    config = yaml.safe_load((CONFIG / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    ports = {service: getattr(shop, service).port for service in SERVICES}
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == set(SERVICES)
    for service, job in jobs.items():
        job["static_configs"] = [{"targets": [f"127.0.0.1:{ports[service]}"]}]
    for rules in config["rule_files"]:
        shutil.copy(CONFIG / rules, folder / rules)
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def ready(url: str, process: subprocess.Popen[bytes]) -> bool:
    assert process.poll() is None, "Prometheus stopped"
    try:
        return requests.get(f"{url}/-/ready", timeout=TIMEOUT).status_code == 200
    except requests.ConnectionError:
        return False


def wait_or_fail(
    done: Callable[[], bool], seconds: float, what: str, logs: Path | None = None
) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            tail = (logs / "prometheus.log").read_text()[-3000:] if logs else ""
            pytest.fail(f"waited {seconds} s for {what}\n{tail}")
        time.sleep(0.5)


def query(url: str, promql: str) -> list[dict[str, Any]]:
    answer = requests.get(f"{url}/api/v1/query", params={"query": promql}, timeout=TIMEOUT)
    body = answer.json()
    assert body["status"] == "success", (promql, body)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def by_job(result: list[dict[str, Any]]) -> dict[str, float]:
    return {series["metric"]["job"]: float(series["value"][1]) for series in result}


def test_prometheus_scrapes_every_service_and_sees_requests(prometheus: str, shop: Shop) -> None:
    def every_service_up_with_requests() -> bool:
        for service in SERVICES:  # some traffic for every service to have a rate
            requests.get(f"{getattr(shop, service).url}/api/openapi.json", timeout=TIMEOUT)
        up = by_job(query(prometheus, "up"))
        rates = by_job(query(prometheus, "sum by (job) (rate(http_requests_total[10s]))"))
        return up == dict.fromkeys(SERVICES, 1.0) and all(
            rates.get(service, 0) > 0 for service in SERVICES
        )

    wait_or_fail(every_service_up_with_requests, SCRAPE_SECONDS, "every service up, with requests")

    workers = by_job(query(prometheus, "sum by (job) (workers)"))
    assert set(workers) == set(SERVICES) and all(count >= 1 for count in workers.values())
    memory = by_job(query(prometheus, "sum by (job) (worker_resident_memory_bytes)"))
    assert all(memory[service] > 10 * 1024 * 1024 for service in SERVICES)


def test_prometheus_loads_every_alert(prometheus: str) -> None:
    answer = requests.get(f"{prometheus}/api/v1/rules", timeout=TIMEOUT).json()
    rules = [rule for group in answer["data"]["groups"] for rule in group["rules"]]
    expected = yaml.safe_load((CONFIG / "alerts.yml").read_text())["groups"][0]["rules"]
    assert {rule["name"] for rule in rules} == {rule["alert"] for rule in expected}
    assert all(rule["type"] == "alerting" for rule in rules)

    def evaluated() -> bool:
        answer = requests.get(f"{prometheus}/api/v1/rules", timeout=TIMEOUT).json()
        rules = [rule for group in answer["data"]["groups"] for rule in group["rules"]]
        return all(rule["health"] == "ok" for rule in rules)

    wait_or_fail(evaluated, SCRAPE_SECONDS, "every alert evaluated without error")


def test_every_dashboard_query_runs(prometheus: str) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    targets = [
        target
        for row in dashboard["panels"]
        for panel in [row, *row.get("panels", [])]
        for target in panel.get("targets", [])
    ]
    for target in targets:
        promql = (
            target["expr"]
            .replace("$__rate_interval", "10s")
            .replace("$__range", "5m")
            .replace("$job", "users|beers|orders")
        )
        query(prometheus, promql)  # a query Prometheus cannot parse or run fails here


def test_workers_add_up_and_a_killed_one_is_counted_not_kept(start_service: StartService) -> None:
    beers = start_service("beers", workers=2)

    def metric(name: str) -> float:
        text = requests.get(f"{beers.url}/metrics", timeout=TIMEOUT).text
        return sum(value for _, value in samples(text, name))

    assert wait_for(lambda: metric("workers") == 2, SCRAPE_SECONDS)
    assert metric("worker_starts_total") == 2
    assert metric("worker_resident_memory_bytes") > metric("worker_resident_memory_max_bytes")
    cpu = metric("worker_cpu_seconds_total")

    os.kill(sorted(descendants(beers.process.pid))[0], signal.SIGKILL)

    # Its replacement starts (counted), and only live workers are in the gauges.
    assert wait_for(lambda: metric("worker_starts_total") == 3, SCRAPE_SECONDS)
    assert wait_for(lambda: metric("workers") == 2, SCRAPE_SECONDS)
    assert metric("worker_cpu_seconds_total") >= cpu  # the dead worker's CPU stays counted
