"""The Kubernetes manifests (``docker/k8s``, a Kustomize base): every Kubernetes object valid
against the API's own schema (kubernetes-validate, strict), the same image and settings as
docker-compose.yml (every ``QTHUMB_`` name a real setting), probes on the paths the API
answers, grace periods past the shutdown timeout, and KEDA's scaler query run against a real
PostgreSQL with qthumb's schema: it counts the queued tasks."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import kubernetes_validate
import psycopg
import yaml

from qthumb.app.qencode.query import read_query
from qthumb.app.settings import Settings
from qthumb.app.tasks.backends import build
from tests.engines import Engines

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "docker" / "k8s"


def objects() -> dict[tuple[str, str], dict[str, Any]]:
    """What the kustomization applies, by (kind, name)."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    found = {}
    for resource in kustomization["resources"]:
        for doc in yaml.safe_load_all((K8S / resource).read_text()):
            found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


def test_every_kubernetes_object_is_valid_against_the_api_schema():
    version = kubernetes_validate.latest_version()
    docs = [*objects().values(), yaml.safe_load((K8S / "secret.example.yaml").read_text())]
    for doc in docs:
        if doc["apiVersion"].startswith("keda.sh/"):
            continue  # a custom resource: checked below
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_same_image_settings_and_paths_as_compose():
    found = objects()
    text = "\n".join(p.read_text() for p in K8S.glob("*.yaml"))
    names = set(re.findall(r"\b(QTHUMB_[A-Z0-9_]+)\b", text))
    settings = {f"QTHUMB_{name.upper()}" for name in Settings.model_fields}
    assert names and names <= settings, names - settings  # no typo: every name a setting
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    shared = set(compose["x-qthumb"]["environment"]) - {"QTHUMB_LOCAL_SOURCE_DIRS"}
    secret = yaml.safe_load((K8S / "secret.example.yaml").read_text())["stringData"]
    config = found[("ConfigMap", "qthumb")]["data"]
    assert shared <= set(secret) | set(config), shared - set(secret) - set(config)
    api = found[("Deployment", "qthumb-api")]["spec"]["template"]["spec"]
    worker = found[("Deployment", "qthumb-worker")]["spec"]["template"]["spec"]
    [api_box], [worker_box] = api["containers"], worker["containers"]
    assert api_box["image"] == worker_box["image"] == "qthumb"
    assert api_box["args"] == compose["services"]["api"]["command"]
    assert worker_box["args"] == compose["services"]["worker"]["command"]
    assert api_box["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api_box["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "EXPOSE 8000" in (ROOT / "docker" / "Dockerfile").read_text()
    assert api_box["ports"][0]["containerPort"] == 8000
    healthcheck = (ROOT / "docker" / "Dockerfile").read_text().split("HEALTHCHECK", 1)[1]
    assert " ".join(worker_box["livenessProbe"]["exec"]["command"][-1:]) in healthcheck
    shutdown = float(config["QTHUMB_SHUTDOWN_TIMEOUT"])
    assert api["terminationGracePeriodSeconds"] > shutdown
    assert worker["terminationGracePeriodSeconds"] > shutdown
    service = found[("Service", "qthumb")]["spec"]
    assert service["selector"] == found[("Deployment", "qthumb-api")]["spec"]["selector"][
        "matchLabels"]  # fmt: skip


def test_the_keda_scaler_counts_the_queued_tasks(engines: Engines, tmp_path: Path):
    scaled = objects()[("ScaledObject", "qthumb-worker")]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] == "qthumb-worker"
    assert ("Deployment", "qthumb-worker") in objects()
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "postgresql"
    assert trigger["metadata"]["connectionFromEnv"] == "QTHUMB_DATABASE_URL"
    assert int(trigger["metadata"]["targetQueryValue"]) >= 1
    database = engines.settings()["QTHUMB_DATABASE_URL"]  # a database of its own
    settings = Settings(data_dir=tmp_path, database_url=database)
    backends = build(settings)
    store = backends.store
    queued = []
    for n in range(3):
        token = store.create_task("key-for-the-scaler", time.time())
        plan = read_query({"source": "x", "format": [{"output": "metadata"}]}) if n else None
        assert store.start(token, '{"source": "x"}', None, time.time(), plan)
        queued.append(token)
    store.claim(queued[0], "host:1", time.time() + 5)  # running: not queued any more
    with psycopg.connect(settings.database_url) as conn:
        [(count,)] = conn.execute(trigger["metadata"]["query"]).fetchall()
    assert count == 2
