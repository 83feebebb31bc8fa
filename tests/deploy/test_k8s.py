"""deploy/k8s: the kustomize overlays render, and every object validates against the
Kubernetes 1.32 schemas (strict: no unknown fields). Validated, not run: no cluster here.

    kubectl kustomize deploy/k8s/overlays/cpu | kubernetes-validate -k 1.32.0 --strict -
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from service.settings import PREFIX, Settings
from tests.helpers import ROOT

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(
    KUBECTL is None, reason="kubectl is not installed (README: Kubernetes manifests)")
K8S_VERSION = "1.32.0"


def render(overlay: str) -> dict[str, dict]:
    out = subprocess.run([KUBECTL or "kubectl", "kustomize", str(ROOT / "deploy/k8s/overlays" /
                                                                  overlay)],
                         capture_output=True, text=True, check=True).stdout
    return {doc["kind"]: doc for doc in yaml.safe_load_all(out)}


def _values(container: dict) -> dict[str, str]:
    """A container's variables set to a literal value (not those read from a Secret)."""
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


@pytest.fixture(scope="module", params=["cpu", "gpu"])
def objects(request) -> tuple[str, dict[str, dict]]:
    return request.param, render(request.param)


def test_every_object_validates_against_the_kubernetes_schemas(objects):
    import kubernetes_validate

    _, docs = objects
    assert set(docs) == {"Deployment", "Service", "HorizontalPodAutoscaler",
                         "PodDisruptionBudget"}
    for doc in docs.values():
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)  # raises when invalid


def test_an_invalid_object_is_caught():
    """The validation above can fail: a misspelt field is refused."""
    import kubernetes_validate

    doc = render("cpu")["Deployment"]
    doc["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_probes_drain_and_zero_downtime_rollout(objects):
    _, docs = objects
    spec = docs["Deployment"]["spec"]
    pod = spec["template"]["spec"]
    api = pod["containers"][0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    env = _values(api)
    # The drain (service/drain.py, the image's CMD) outlasts the readiness probe's
    # failures, and the kubelet's SIGKILL comes after the drain and a whole request.
    drain = float(env["MNIST_DRAIN_S"])
    probe = api["readinessProbe"]
    assert drain > probe["periodSeconds"] * probe["failureThreshold"]
    assert pod["terminationGracePeriodSeconds"] > drain + int(env["MNIST_TIMEOUT_S"])
    assert "lifecycle" not in api  # no preStop sleep: the drain does that work
    # Everything selects the pods the Deployment makes.
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"] == labels
    assert docs["Service"]["spec"]["selector"] == labels
    assert docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == labels
    assert docs["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == \
        docs["Deployment"]["metadata"]["name"]


def test_locked_down_non_root_pods(objects):
    _, docs = objects
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    api = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert api["securityContext"] == {"readOnlyRootFilesystem": True,
                                      "allowPrivilegeEscalation": False,
                                      "capabilities": {"drop": ["ALL"]}}
    assert {"requests", "limits"} <= set(api["resources"])


def test_the_gpu_overlay_asks_for_a_gpu_and_insists_on_it(objects):
    overlay, docs = objects
    api = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    env = _values(api)
    if overlay == "gpu":
        assert api["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert env["MNIST_REQUIRE_GPU"] == "1"
    else:
        assert "nvidia.com/gpu" not in api["resources"]["limits"]
        assert "MNIST_REQUIRE_GPU" not in env


def test_the_grpc_port_is_named_served_and_left_to_the_http_probes(objects):
    """The pod's `grpc` port is the one its gRPC server binds (its MNIST_GRPC_PORT, else
    the setting's default), the Service forwards to it by name, and every probe stays on
    HTTP: /readyz covers both transports."""
    _, docs = objects
    api = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    env = _values(api)
    served = int(env.get(PREFIX + "GRPC_PORT", Settings.model_fields["grpc_port"].default))
    ports = {p["name"]: p for p in api["ports"]}
    assert ports["grpc"]["containerPort"] == served
    service = {p["name"]: p for p in docs["Service"]["spec"]["ports"]}
    assert service["grpc"]["targetPort"] == "grpc"
    assert service["grpc"]["appProtocol"] == "kubernetes.io/h2c"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert api[probe]["httpGet"]["port"] == "http", probe


def test_the_feedback_database_url_comes_from_an_optional_secret(objects):
    """No database manifests: the URL of a managed PostgreSQL is a Secret's; without the
    Secret the pod still starts and serves /predict (its /feedback answers 503)."""
    _, docs = objects
    (api,) = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    (feedback,) = [e for e in api["env"] if e["name"] == PREFIX + "FEEDBACK_URL"]
    assert feedback["valueFrom"]["secretKeyRef"]["optional"] is True
    assert set(docs) <= {"Deployment", "Service", "HorizontalPodAutoscaler",
                         "PodDisruptionBudget"}
