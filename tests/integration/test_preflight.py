"""playbooks/preflight.yml: a correct setup passes; a wrong service, port, path or API group fails with its fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client, config

from tests.stack.controller.testing import controller_fixture
from tests.stack.kubeapi import DEFAULT_CRD_DIR

ROOT = Path(__file__).resolve().parents[2]
controller = controller_fixture([{"name": "innabox-create-compute-instance", "organization": "innabox", "playbook": "aap_target.yml"}])
STREAM = "http://innabox-aap-eda-api.aap.svc:8000/api/eda/v1/external_event_stream/6f1c0d3e-1111-4222-8333-444455556666/post/"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, kube):
    """An API of its own (the backend under test) that serves only the cloudkit group's CRDs, with AAP's EDA API service in
    namespace aap."""
    crds = [DEFAULT_CRD_DIR / "computeinstances.cloudkit.openshift.io.yaml", DEFAULT_CRD_DIR / "tenants.cloudkit.openshift.io.yaml"]
    server = kube.new_api(crd_paths=crds).start()
    kubeconfig = server.write_kubeconfig(tmp_path_factory.mktemp("preflight") / "kubeconfig")
    core = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))
    core.create_namespace({"metadata": {"name": "aap"}})
    core.create_namespaced_service("aap", {"metadata": {"name": "innabox-aap-eda-api"},
                                           "spec": {"ports": [{"name": "http", "port": 8000, "targetPort": 8000}]}})
    yield kubeconfig
    server.stop()


def preflight(kubeconfig, tmp_path, controller_env=None, **extra_vars):
    path = tmp_path / "vars.json"
    path.write_text(json.dumps(dict({"eda_config_namespace": "aap"}, **extra_vars)))
    environment = dict(os.environ, K8S_AUTH_KUBECONFIG=str(kubeconfig), ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".build"), ANSIBLE_NOCOLOR="1")
    environment.pop("CONTROLLER_HOST", None)
    environment.update(controller_env or {})
    command = [str(Path(sys.executable).with_name("ansible-playbook")), str(ROOT / "playbooks" / "preflight.yml"), "-e", "@%s" % path]
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300, check=False)


def test_a_correct_setup_passes(cluster, tmp_path):
    result = preflight(cluster, tmp_path, eda_config_webhook_urls=[STREAM, STREAM.replace("/api/eda", "/eda-event-streams/api/eda")])
    assert result.returncode == 0, result.stdout[-4000:]


@pytest.mark.parametrize(
    "url, problem",
    [
        ("http://innabox-eda-service:5000/create-compute-instance", "Service aap/innabox-eda-service does not exist"),
        ("http://innabox-aap-eda-api.aap.svc:5000/create-compute-instance", "exposes port(s) 8000, not 5000"),
        ("http://innabox-aap-eda-api.aap:8000/create-vm", "answers /create-vm with 405"),
    ],
)
def test_wrong_endpoints_fail_with_the_fix(cluster, tmp_path, url, problem):
    result = preflight(cluster, tmp_path, eda_config_webhook_urls=[url, STREAM])
    assert result.returncode != 0
    assert problem in result.stdout
    assert "1 problem(s)" in result.stdout, "the correct URL is not reported"
    fix = "Fix: point it at the event stream on the EDA API service: http://innabox-aap-eda-api.aap.svc:8000/api/eda/v1/external_event_stream/"
    assert fix in result.stdout


def test_the_wrong_api_group_is_caught_with_the_right_one(cluster, tmp_path):
    result = preflight(cluster, tmp_path, eda_config_api_group="osac.openshift.io", eda_config_webhook_urls=["http://innabox-eda-service:5000/x"])
    assert result.returncode != 0
    assert "2 problem(s)" in result.stdout, "every problem at once"
    assert "serves ComputeInstance as computeinstances.cloudkit.openshift.io, not in osac.openshift.io" in result.stdout
    assert "set api_group (or CLOUDKIT_API_GROUP) to cloudkit.openshift.io" in result.stdout


def test_missing_job_templates_are_named(cluster, tmp_path, controller):
    env = {"CONTROLLER_HOST": controller.gateway_url, "CONTROLLER_OAUTH_TOKEN": controller.token}
    result = preflight(cluster, tmp_path, controller_env=env, eda_config_webhook_urls=[STREAM])
    assert result.returncode != 0
    assert "1 problem(s)" in result.stdout, "the create template exists"
    assert "job_template innabox-delete-compute-instance: no job template named 'innabox-delete-compute-instance'" in result.stdout
    assert controller.token not in result.stdout
    wrong = preflight(cluster, tmp_path, controller_env=dict(env, CONTROLLER_OAUTH_TOKEN="wrong"), eda_config_webhook_urls=[STREAM])
    assert "refused the token" in wrong.stdout and "Fix: check controller_host and its credentials" in wrong.stdout
    assert "Fix: create the job template" not in wrong.stdout
