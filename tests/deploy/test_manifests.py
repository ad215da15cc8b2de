"""The deployment files hold what a hardened cluster and a careful operator need:
the restricted Pod Security Standard for every container, graceful stops,
rollouts and drains that keep a pod ready, the public paths, who may connect to
whom, and one image name everywhere. Read from the files; nothing is started."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest
import yaml

from launcher import SERVICES
from servicekit.serving import GRACE_SECONDS, parse_arguments

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
Manifest = dict[str, Any]

# The restricted standard's volume types; anything else (hostPath first) is refused.
RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
INGRESS_CONTROLLER = "ingress-controller"
# Who may open a connection to whom, and nothing more.
ALLOWED_CALLERS = {
    "users": {"beers", "orders", INGRESS_CONTROLLER},
    "beers": {"orders", INGRESS_CONTROLLER},
    "orders": {INGRESS_CONTROLLER},
    "users-database": {"users"},
    "beers-database": {"beers"},
    "orders-database": {"orders"},
}


def load(path: Path) -> list[Manifest]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


@pytest.fixture(scope="module")
def manifests() -> list[Manifest]:
    """Everything `kubectl apply -k deploy/k8s` applies."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [document for name in kustomization["resources"] for document in load(K8S / name)]


def of_kind(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def pod_specs(manifests: list[Manifest]) -> Iterator[tuple[str, Manifest]]:
    """Every pod the manifests make: (the workload's name, its pod spec)."""
    for manifest in manifests:
        spec = manifest.get("spec", {})
        if manifest["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        if "template" in spec:
            yield manifest["metadata"]["name"], spec["template"]["spec"]


def containers(pod: Manifest) -> list[Manifest]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def project_version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def test_kustomization_applies_every_manifest_in_the_folder() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    in_folder = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}

    assert set(kustomization["resources"]) == in_folder
    assert kustomization["namespace"] == "beers-shop"


def test_every_service_has_a_deployment_with_pods(manifests: list[Manifest]) -> None:
    assert set(of_kind(manifests, "Deployment")) == set(SERVICES)
    assert {name for name, _ in pod_specs(manifests)} == set(SERVICES)


def test_the_namespace_enforces_the_restricted_pod_security_standard(
    manifests: list[Manifest],
) -> None:
    labels = of_kind(manifests, "Namespace")["beers-shop"]["metadata"]["labels"]

    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_every_container_meets_the_restricted_pod_security_standard(
    manifests: list[Manifest],
) -> None:
    for workload, pod in pod_specs(manifests):
        pod_security = pod.get("securityContext", {})
        for namespace in ("hostNetwork", "hostPID", "hostIPC"):
            assert not pod.get(namespace), f"{workload}: {namespace}"
        for volume in pod.get("volumes", []):
            types = set(volume) - {"name"}
            assert types <= RESTRICTED_VOLUME_TYPES, f"{workload}: volume {volume}"
        for container in containers(pod):
            where = f"{workload}/{container['name']}"
            security = {**pod_security, **container.get("securityContext", {})}
            assert security.get("runAsNonRoot") is True, where
            assert security.get("runAsUser", 1) != 0, where
            assert security.get("allowPrivilegeEscalation") is False, where
            assert not security.get("privileged"), where
            assert security.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not security.get("capabilities", {}).get("add"), where
            assert security.get("seccompProfile") == {"type": "RuntimeDefault"}, where
            assert security.get("readOnlyRootFilesystem") is True, where
            assert not any("hostPort" in port for port in container.get("ports", [])), where


def test_a_stopping_pod_pauses_then_has_time_for_the_servers_grace(
    manifests: list[Manifest],
) -> None:
    for workload, pod in pod_specs(manifests):
        (server,) = pod["containers"]
        command = server["lifecycle"]["preStop"]["exec"]["command"]
        assert command[0] == "sleep", workload
        pause = int(command[1])
        assert 2 <= pause <= 10, f"{workload}: a pause of {pause} s"
        assert pod["terminationGracePeriodSeconds"] > pause + GRACE_SECONDS, workload


def image_entrypoint() -> list[str]:
    """The Dockerfile's ENTRYPOINT, in its exec form."""
    (line,) = re.findall(r"^ENTRYPOINT (.+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    return list(json.loads(line))


def test_the_image_runs_the_server_itself() -> None:
    assert image_entrypoint() == ["python", "-m", "servicekit.serving"]


def test_every_pod_sets_up_its_database_before_its_server_starts(
    manifests: list[Manifest],
) -> None:
    for workload, pod in pod_specs(manifests):
        (migrate,) = pod["initContainers"]
        (server,) = pod["containers"]
        assert [*migrate["command"], *migrate["args"]] == [
            *("python", "-m", "invoke", workload, "setup")
        ], workload
        assert "command" not in server, f"{workload}: the image's entrypoint is the server"
        settings = parse_arguments(server["args"])
        assert (settings.app, settings.host) == (workload, "0.0.0.0"), workload
        assert settings.port == SERVICES[workload].port, workload


def test_compose_sets_up_each_database_in_a_one_shot_of_the_image() -> None:
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    for name, entry in SERVICES.items():
        setup, server = services[f"{name}-setup"], services[name]
        assert [*setup["entrypoint"], *setup["command"]] == [
            *("python", "-m", "invoke", name, "setup")
        ], name
        assert setup["restart"] == "on-failure", name  # until PostgreSQL takes connections
        assert setup["environment"] == server["environment"], name  # the same database
        assert setup["depends_on"] == {"postgres": {"condition": "service_healthy"}}, name
        # Not a dependency of its server: podman would then restart no crashed server.
        assert f"{name}-setup" not in server["depends_on"], name
        assert "entrypoint" not in server, f"{name}: the image's entrypoint is the server"
        settings = parse_arguments(server["command"])
        assert (settings.app, settings.port) == (name, entry.port), name


def test_a_rollout_never_takes_the_last_ready_pod(manifests: list[Manifest]) -> None:
    for name, deployment in of_kind(manifests, "Deployment").items():
        strategy = deployment["spec"]["strategy"]
        assert strategy["type"] == "RollingUpdate", name
        assert strategy["rollingUpdate"]["maxUnavailable"] == 0, name
        assert strategy["rollingUpdate"]["maxSurge"] >= 1, name


def test_every_service_has_a_disruption_budget_and_at_least_two_pods(
    manifests: list[Manifest],
) -> None:
    budgets = of_kind(manifests, "PodDisruptionBudget")
    autoscalers = of_kind(manifests, "HorizontalPodAutoscaler")
    for name, deployment in of_kind(manifests, "Deployment").items():
        pods = deployment["spec"]["selector"]["matchLabels"]
        assert budgets[name]["spec"]["selector"]["matchLabels"] == pods
        assert budgets[name]["spec"]["minAvailable"] == 1
        assert autoscalers[name]["spec"]["minReplicas"] >= 2, name


def test_the_ingress_routes_each_public_path_to_its_service(manifests: list[Manifest]) -> None:
    (ingress,) = of_kind(manifests, "Ingress").values()
    services = of_kind(manifests, "Service")
    routes = {
        path["path"]: (path["pathType"], path["backend"]["service"])
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }

    assert routes == {
        f"/api/{name}": ("Prefix", {"name": name, "port": {"name": "http"}}) for name in SERVICES
    }
    for name in SERVICES:
        assert [port["name"] for port in services[name]["spec"]["ports"]] == ["http"]


def caller(peer: Manifest) -> str:
    """Who a NetworkPolicy's `from` entry lets in: one of the shop's pods, or the
    ingress controller's (its pods in its own namespace, both required)."""
    pods = peer.get("podSelector", {}).get("matchLabels", {})
    if "namespaceSelector" in peer:
        namespace = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        assert namespace == pods["app.kubernetes.io/name"] == "ingress-nginx", peer
        return INGRESS_CONTROLLER
    assert set(peer) == {"podSelector"}, f"a caller by address or from anywhere: {peer}"
    return str(pods["app.kubernetes.io/name"])


def test_network_policies_let_in_only_who_needs_to_connect(manifests: list[Manifest]) -> None:
    policies = of_kind(manifests, "NetworkPolicy")
    default_deny = policies.pop("default-deny-ingress")["spec"]
    assert default_deny == {"podSelector": {}, "policyTypes": ["Ingress"]}

    allowed = {}
    for policy in policies.values():
        spec = policy["spec"]
        target = spec["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        assert spec["policyTypes"] == ["Ingress"], target
        allowed[target] = {caller(peer) for rule in spec["ingress"] for peer in rule["from"]}
        ports = [port["port"] for rule in spec["ingress"] for port in rule["ports"]]
        assert ports == (["http"] if target in SERVICES else [5432]), target

    assert allowed == ALLOWED_CALLERS


def test_users_trusts_no_proxy_until_the_operator_names_the_ingress_controllers(
    manifests: list[Manifest],
) -> None:
    trusted = of_kind(manifests, "ConfigMap")["beers-shop"]["data"]["TRUSTED_PROXIES"]
    networks = [ip_network(part, strict=False) for part in trusted.replace(",", " ").split()]

    assert networks == []


def images_in_manifests(manifests: list[Manifest]) -> set[str]:
    return {container["image"] for _, pod in pod_specs(manifests) for container in containers(pod)}


def test_one_image_name_everywhere_tagged_with_the_projects_version(
    manifests: list[Manifest],
) -> None:
    image = f"beers-shop:{project_version()}"
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    compose_images = {
        service["image"] for service in compose["services"].values() if "build" in service
    }
    # Tagged names only: the namespace, the Secret and the labels say beers-shop too.
    readme_images = set(
        re.findall(r"(?<![\w/])beers-shop:[\w.-]+", (ROOT / "README.md").read_text())
    )

    assert images_in_manifests(manifests) == {image}
    assert kustomization["images"] == [
        {"name": "beers-shop", "newName": "beers-shop", "newTag": project_version()}
    ]
    assert compose_images == {image}
    assert readme_images == {image}, "the README names the image otherwise"
