"""The rulebooks under real ansible-rulebook, with the AAP controller stand-in running the job templates."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.integration.instances import Operator
from tests.stack.controller import ControllerServer

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PLAYBOOKS = ROOT / "tests" / "integration" / "playbooks"
TOKEN = "webhook-token"
SECRET = "webhook-hmac-secret"
GROUP = "cloudkit.openshift.io"
# A safety net for a hung test, not a measurement.
PATIENCE = 90


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(predicate, what):
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("gave up waiting for " + what)


@pytest.fixture
def controller(tmp_path):
    """The controller stand-in with the two templates the rulebooks launch; create takes a few seconds."""
    templates = [
        {"name": "innabox-create-compute-instance", "organization": "innabox", "type": "job", "playbook": "eda_event_job.yml",
         "allow_simultaneous": False, "ask_variables_on_launch": True, "extra_vars": {"eda_job_pause": 1}},
        {"name": "innabox-delete-compute-instance", "organization": "innabox", "type": "job", "playbook": "eda_event_job.yml",
         "allow_simultaneous": False, "ask_variables_on_launch": True},
    ]
    server = ControllerServer(templates=templates, project_dir=str(PLAYBOOKS), work_dir=str(tmp_path / "controller")).start()
    yield server
    server.stop()


@pytest.fixture
def rulebook(tmp_path, controller):
    """Start ansible-rulebook on a rulebook; returns its Popen. Stopped (by pid) after the test."""
    processes = []
    inventory = tmp_path / "inventory.yml"
    inventory.write_text("all:\n  hosts:\n    localhost:\n      ansible_connection: local\n")

    def start(name, variables, env=None, env_vars=()):
        path = tmp_path / "vars.yml"
        path.write_text(json.dumps(variables))
        environment = dict(os.environ)
        environment.update(
            PATH="%s%s%s" % (BIN, os.pathsep, os.environ.get("PATH", "")),  # ansible-rulebook finds collections with ansible-galaxy
            ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".build"),
            EDA_JOB_TEMPLATE_REFRESH_DELAY="0.3",
        )
        environment.update(env or {})
        command = [str(BIN / "ansible-rulebook"), "--rulebook", str(ROOT / "rulebooks" / name), "-i", str(inventory), "--vars", str(path),
                   "--controller-url", controller.url + "/api/controller/", "--controller-token", controller.token,
                   "--controller-ssl-verify", "no", "-v"]
        if env_vars:
            command += ["-E", ",".join(env_vars)]
        log = open(tmp_path / ("%s.log" % name), "w+", encoding="utf-8")  # pylint: disable=consider-using-with
        process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT, cwd=str(tmp_path))  # pylint: disable=consider-using-with
        process.log = log
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        process.log.close()


def output(process):
    process.log.flush()
    process.log.seek(0)
    return process.log.read()


def post(port, path, body, token=TOKEN, secret=SECRET, signature=None):
    """POST JSON as the operator (or an event stream) would; returns the HTTP status."""
    data = json.dumps(body).encode("utf-8")
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    if secret:
        headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(secret.encode("utf-8"), data, hashlib.sha256).hexdigest()
    if signature:
        headers["X-Hub-Signature-256"] = signature
    request = urllib.request.Request("http://127.0.0.1:%d/%s" % (port, path), data, headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, ConnectionError):
        return None


def instance(name, uid, deleting=False):
    metadata = {"name": name, "namespace": "tenants", "uid": uid, "resourceVersion": "7",
                "finalizers": [GROUP + "/computeinstance", GROUP + "/computeinstance-aap"]}
    if deleting:
        metadata["deletionTimestamp"] = "2026-02-01T10:00:00Z"
    return {"apiVersion": GROUP + "/v1alpha1", "kind": "ComputeInstance", "metadata": metadata,
            "spec": {"templateID": "cloudkit.templates.ocp_virt_vm"}, "status": {"desiredConfigVersion": "abc"}}


def launched(controller):
    """(template name, instance name, rule) of each job, oldest first."""
    found = []
    for job in controller.jobs():
        eda = json.loads(job["extra_vars"])["ansible_eda"]
        found.append((job["name"], eda["event"]["payload"]["metadata"]["name"], eda["rule"]))
    return found


def test_webhook_authenticates_and_launches_the_right_templates(rulebook, controller):
    port = free_port()
    process = rulebook("compute_instance_webhook.yml", {"webhook_host": "127.0.0.1", "webhook_port": port},
                       env={"webhook_token": TOKEN, "webhook_hmac_secret": SECRET}, env_vars=("webhook_token", "webhook_hmac_secret"))
    wait_for(lambda: process.poll() is not None or post(port, "create-compute-instance", {}, token=None) == 401, "the webhook to listen")
    assert process.poll() is None, output(process)

    body = instance("vm1", "u-1")
    assert post(port, "create-compute-instance", body, token=None) == 401
    assert post(port, "create-compute-instance", body, token="wrong") == 401
    assert post(port, "create-compute-instance", body, secret="wrong") == 401
    assert post(port, "create-compute-instance", body, signature="sha256=" + "0" * 64) == 401
    assert post(port, "create-compute-instance", body, secret=None) == 400  # no signature at all
    assert not controller.jobs(), "a refused request launched a job"

    # Create then, at once, delete of the same instance: the delete job must start after the create job ended.
    assert post(port, "create-compute-instance", body) == 200
    assert post(port, "delete-compute-instance", instance("vm1", "u-1", deleting=True)) == 200
    # One URL for everything (an AAP event stream): the payload decides.
    assert post(port, "stream", instance("vm2", "u-2")) == 200
    assert post(port, "stream", instance("vm2", "u-2", deleting=True)) == 200
    # The legacy paths.
    assert post(port, "create-vm", instance("vm3", "u-3")) == 200
    assert post(port, "delete-vm", instance("vm3", "u-3")) == 200

    wait_for(lambda: len(controller.jobs()) == 6 and controller.wait_idle(0.1), "six finished jobs")
    create, delete = "innabox-create-compute-instance", "innabox-delete-compute-instance"
    assert launched(controller) == [
        (create, "vm1", "Create compute instance"), (delete, "vm1", "Delete compute instance"),
        (create, "vm2", "Create compute instance"), (delete, "vm2", "Delete compute instance"),
        (create, "vm3", "Create compute instance"), (delete, "vm3", "Delete compute instance"),
    ]
    jobs = controller.jobs()
    assert all(job["status"] == "successful" for job in jobs), [job["stdout"] for job in jobs]
    assert json.loads(jobs[0]["extra_vars"])["ansible_eda"]["event"]["payload"] == body
    assert json.loads(jobs[0]["extra_vars"])["ansible_eda"]["event"]["meta"]["endpoint"] == "create-compute-instance"
    for earlier, later in zip(jobs, jobs[1:]):
        assert later["started"] >= earlier["finished"], "jobs overlapped: %s then %s" % (earlier["name"], later["name"])


def test_webhook_without_hmac_needs_only_the_token(rulebook, controller):
    port = free_port()
    process = rulebook("compute_instance_webhook.yml", {"webhook_host": "127.0.0.1", "webhook_port": port},
                       env={"webhook_token": TOKEN}, env_vars=("webhook_token",))
    wait_for(lambda: process.poll() is not None or post(port, "create-compute-instance", {}, token=None) == 401, "the webhook to listen")
    assert process.poll() is None, output(process)
    assert post(port, "create-compute-instance", instance("vm4", "u-4"), token="wrong", secret=None) == 401
    assert post(port, "create-compute-instance", instance("vm4", "u-4"), secret=None) == 200
    wait_for(lambda: len(controller.jobs()) == 1 and controller.wait_idle(0.1), "the create job")
    assert launched(controller) == [("innabox-create-compute-instance", "vm4", "Create compute instance")]


def test_watch_rulebook_provisions_and_deprovisions(rulebook, controller, kube, api_client, namespace):
    operator = Operator(api_client, kube.kubeconfig)
    process = rulebook("compute_instance_watch.yml", {"namespaces": [namespace], "prefix": "innabox", "organization": "innabox"},
                       env={"K8S_AUTH_KUBECONFIG": kube.kubeconfig})
    wait_for(lambda: process.poll() is not None or "Waiting for events" in output(process), "the rulebook to start")
    assert process.poll() is None, output(process)

    created = operator.create(namespace, "vm1")
    wait_for(lambda: controller.jobs() and controller.wait_idle(0.1), "the provision job")
    job = controller.jobs()[0]
    assert job["name"] == "innabox-create-compute-instance" and job["status"] == "successful", job["stdout"]
    event = json.loads(job["extra_vars"])["ansible_eda"]["event"]
    assert event["payload"]["metadata"]["uid"] == created["metadata"]["uid"]
    assert event["action"] == "provision" and event["identity"]["name"] == "vm1"

    # What the provision job does on success: our finalizer and the annotation; then the user deletes it.
    operator.custom.patch_namespaced_custom_object(GROUP, "v1alpha1", namespace, "computeinstances", "vm1", {"metadata": {
        "finalizers": [GROUP + "/computeinstance", GROUP + "/computeinstance-aap"],
        "annotations": {GROUP + "/reconciled-config-version": created["status"]["desiredConfigVersion"]}}})
    operator.delete(namespace, "vm1")
    wait_for(lambda: len(controller.jobs()) == 2 and controller.wait_idle(0.1), "the deprovision job")
    job = controller.jobs()[1]
    assert job["name"] == "innabox-delete-compute-instance" and job["status"] == "successful", job["stdout"]
    assert json.loads(job["extra_vars"])["ansible_eda"]["event"]["payload"]["metadata"]["deletionTimestamp"]

    # Stopping the activation cancels the source, which must close its HTTP session quietly.
    process.send_signal(signal.SIGINT)
    process.wait(PATIENCE)
    log = output(process)
    assert "computeinstances" in log
    for problem in ("Traceback", "Unclosed", "Task was destroyed", "Source error"):
        assert problem not in log, log
