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


# -- the operator's Deployment: which provider it really uses, and whether its settings work --------------------------

OPERATOR_NAMESPACE = "cloudkit-operator-system"
operator_controller = controller_fixture([
    {"name": "innabox-create-compute-instance", "organization": "innabox", "playbook": "aap_target.yml"},
    {"name": "innabox-delete-compute-instance", "organization": "innabox", "playbook": "aap_target.yml"},
    {"name": "innabox-delete-no-prompt", "organization": "innabox", "playbook": "aap_target.yml", "ask_variables_on_launch": False},
])


def operator_deployment(kubeconfig, name, env, secrets=None):
    """The operator's Deployment `name` with this container env (a list of EnvVar dicts), and Secrets {name: {key: value}}."""
    api = config.new_client_from_config(config_file=str(kubeconfig))
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    try:
        core.create_namespace({"metadata": {"name": OPERATOR_NAMESPACE}})
    except client.ApiException as exc:
        if exc.status != 409:
            raise
    for secret, data in (secrets or {}).items():
        core.create_namespaced_secret(OPERATOR_NAMESPACE, {"metadata": {"name": secret}, "stringData": data})
    labels = {"control-plane": name}
    apps.create_namespaced_deployment(OPERATOR_NAMESPACE, {
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
            "containers": [{"name": "manager", "image": "quay.io/cloudkit/cloudkit-operator:latest", "env": env}]}}}})
    return {"eda_config_check_operator": True, "eda_config_operator_namespace": OPERATOR_NAMESPACE, "eda_config_operator_deployment": name}


def plain(**variables):
    return [{"name": key, "value": value} for key, value in variables.items()]


def from_secret(name, secret, key):
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def test_an_operator_in_eda_mode_is_checked_through_its_webhooks(cluster, tmp_path):
    good = operator_deployment(cluster, "eda-good", plain(CLOUDKIT_PROVISIONING_PROVIDER="eda", CLOUDKIT_COMPUTE_INSTANCE_CREATE_WEBHOOK=STREAM,
                                                          CLOUDKIT_COMPUTE_INSTANCE_DELETE_WEBHOOK=STREAM))
    result = preflight(cluster, tmp_path, **good)
    assert result.returncode == 0, result.stdout[-4000:]
    bad = operator_deployment(cluster, "eda-upstream", plain(
        CLOUDKIT_PROVISIONING_PROVIDER="eda", CLOUDKIT_COMPUTE_INSTANCE_CREATE_WEBHOOK="http://innabox-eda-service:5000/create-compute-instance",
        CLOUDKIT_COMPUTE_INSTANCE_DELETE_WEBHOOK="http://innabox-aap-eda-api.aap:8000/create-vm"))
    result = preflight(cluster, tmp_path, **bad)
    assert result.returncode != 0
    assert "2 problem(s)" in result.stdout, result.stdout[-4000:]
    assert "CLOUDKIT_COMPUTE_INSTANCE_CREATE_WEBHOOK=http://innabox-eda-service:5000/create-compute-instance: Service aap/innabox-eda-service" \
        " does not exist" in result.stdout
    assert "CLOUDKIT_COMPUTE_INSTANCE_DELETE_WEBHOOK=http://innabox-aap-eda-api.aap:8000/create-vm: the EDA API answers /create-vm with 405" \
        in result.stdout


def test_an_operator_in_aap_direct_mode_is_checked_with_its_own_url_token_and_templates(cluster, tmp_path, operator_controller):
    token = operator_controller.token
    env = plain(CLOUDKIT_PROVISIONING_PROVIDER="aap", CLOUDKIT_AAP_URL=operator_controller.gateway_url) + [
        from_secret("CLOUDKIT_AAP_TOKEN", "aap-token", "token")]
    good = operator_deployment(cluster, "aap-good", env, {"aap-token": {"token": token}})
    result = preflight(cluster, tmp_path, **good)
    assert result.returncode == 0, result.stdout[-4000:]
    assert token not in result.stdout + result.stderr, "a Secret's value is never printed"

    refused = operator_deployment(cluster, "aap-refused", env[:2] + [from_secret("CLOUDKIT_AAP_TOKEN", "aap-old-token", "token")],
                                  {"aap-old-token": {"token": "expired-token-value"}})
    result = preflight(cluster, tmp_path, **refused)
    assert result.returncode != 0
    assert "refused the operator's token (Secret %s/aap-old-token key token, HTTP 401)" % OPERATOR_NAMESPACE in result.stdout
    assert "expired-token-value" not in result.stdout + result.stderr

    no_prompt = operator_deployment(cluster, "aap-no-prompt", env + plain(CLOUDKIT_AAP_DEPROVISION_TEMPLATE="innabox-delete-no-prompt"))
    result = preflight(cluster, tmp_path, **no_prompt)
    assert "1 problem(s)" in result.stdout, result.stdout[-4000:]
    assert "innabox-delete-no-prompt: it does not prompt for variables on launch" in result.stdout
    assert "Fix: enable Prompt on launch for Variables" in result.stdout


def test_a_half_configured_operator_gets_every_problem_at_once(cluster, tmp_path):
    half = operator_deployment(cluster, "aap-half", plain(CLOUDKIT_PROVISIONING_PROVIDER="aap") + [
        from_secret("CLOUDKIT_AAP_TOKEN", "no-such-secret", "token")])
    result = preflight(cluster, tmp_path, **half)
    assert result.returncode != 0
    assert "2 problem(s)" in result.stdout, result.stdout[-4000:]
    assert "CLOUDKIT_AAP_URL is not set. Fix: set CLOUDKIT_AAP_URL" in result.stdout
    assert "Secret %s/no-such-secret does not exist" % OPERATOR_NAMESPACE in result.stdout

    eda_half = operator_deployment(cluster, "eda-half", plain(CLOUDKIT_PROVISIONING_PROVIDER="eda", CLOUDKIT_COMPUTE_INSTANCE_CREATE_WEBHOOK=STREAM))
    result = preflight(cluster, tmp_path, **eda_half)
    assert "1 problem(s)" in result.stdout and "CLOUDKIT_COMPUTE_INSTANCE_DELETE_WEBHOOK is not set" in result.stdout

    unset = operator_deployment(cluster, "no-provider", plain(CLOUDKIT_PROVISIONING_PROVIDER="ansible"))
    result = preflight(cluster, tmp_path, **unset)
    assert "CLOUDKIT_PROVISIONING_PROVIDER is 'ansible'. Fix: set CLOUDKIT_PROVISIONING_PROVIDER to eda" in result.stdout

    elsewhere = dict(half)
    elsewhere["eda_config_operator_deployment"] = "not-deployed"
    missing = preflight(cluster, tmp_path, **elsewhere)
    assert "Deployment %s/not-deployed: the operator's Deployment does not exist" % OPERATOR_NAMESPACE in missing.stdout


def test_the_later_osac_names_are_read_and_their_api_group_must_match(cluster, tmp_path):
    later = operator_deployment(cluster, "osac", plain(OSAC_PROVISIONING_PROVIDER="eda", OSAC_COMPUTE_INSTANCE_CREATE_WEBHOOK=STREAM,
                                                       OSAC_COMPUTE_INSTANCE_DELETE_WEBHOOK="http://innabox-eda-service:5000/x"))
    result = preflight(cluster, tmp_path, **later)
    assert result.returncode != 0
    assert "2 problem(s)" in result.stdout, result.stdout[-4000:]
    assert "the operator uses the OSAC_* variables of the operator whose API group is osac.openshift.io, but api_group is cloudkit.openshift.io" \
        in result.stdout
    assert "OSAC_COMPUTE_INSTANCE_DELETE_WEBHOOK=http://innabox-eda-service:5000/x: Service aap/innabox-eda-service does not exist" in result.stdout
