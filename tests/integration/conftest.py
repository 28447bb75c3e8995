"""Integration fixtures: run a playbook against the API under test (the shared `kube` fixture)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client

from tests.integration.instances import Operator
from tests.reliability_report import check

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GROUP = "cloudkit.openshift.io"


@pytest.fixture
def run_playbook(kube):
    """Run a playbook from tests/integration/playbooks; returns the CompletedProcess."""

    def run(playbook, namespace, **env):
        environment = dict(os.environ)
        environment.update(
            K8S_AUTH_KUBECONFIG=kube.kubeconfig,
            ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".build"),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
            TEST_NAMESPACE=namespace,
        )
        environment.update(env)
        command = [str(Path(sys.executable).with_name("ansible-playbook")), str(ROOT / "tests" / "integration" / "playbooks" / playbook)]
        return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600, check=False)

    return run


@pytest.fixture(scope="session")
def kubevirt(kube):
    """The KubeVirt/CDI stand-in on the stand-in API (a real cluster brings real KubeVirt)."""
    if kube.server is None:
        yield None
        return
    from tests.stack.kubevirt import KubeVirtController

    controller = KubeVirtController(kube.kubeconfig, ready_delay=0.3, import_delay=0.2).start()
    yield controller
    controller.stop()


@pytest.fixture
def run_job(kube, tmp_path):
    """Run one of the collection's playbooks as a job template would: extra vars from a file."""
    counter = []

    def run(playbook, extra_vars, job_id=None, kubeconfig=None, **env):
        counter.append(1)
        path = tmp_path / ("extra-vars-%d.json" % len(counter))
        path.write_text(json.dumps(extra_vars))
        environment = dict(os.environ)
        environment.update(
            K8S_AUTH_KUBECONFIG=kubeconfig or kube.kubeconfig,
            ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".build"),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
            JOB_ID=str(job_id or "job-%d" % len(counter)),
        )
        environment.update(env)
        command = [str(Path(sys.executable).with_name("ansible-playbook")), str(ROOT / "playbooks" / playbook), "-e", "@%s" % path]
        return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=900, check=False)

    return run


@pytest.fixture
def controller(tmp_path):
    """The controller stand-in with the two templates the rulebooks launch (tests/integration/playbooks/eda_event_job.yml).

    The create job takes a second. The controller's work dir (ansible-runner's artifacts) is tmp_path/controller.
    """
    from tests.stack.controller import ControllerServer

    templates = [
        {"name": "innabox-create-compute-instance", "organization": "innabox", "type": "job", "playbook": "eda_event_job.yml",
         "allow_simultaneous": False, "ask_variables_on_launch": True, "extra_vars": {"eda_job_pause": 1}},
        {"name": "innabox-delete-compute-instance", "organization": "innabox", "type": "job", "playbook": "eda_event_job.yml",
         "allow_simultaneous": False, "ask_variables_on_launch": True},
    ]
    server = ControllerServer(templates=templates, project_dir=str(ROOT / "tests" / "integration" / "playbooks"), work_dir=str(tmp_path / "controller")).start()
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


def recap_changed(result):
    """The changed= count of the play recap."""
    for line in result.stdout.splitlines():
        if line.startswith("localhost") and "changed=" in line:
            return int(line.split("changed=")[1].split()[0])
    raise AssertionError("no play recap in:\n" + result.stdout[-3000:])


def ok(result):
    """Assert that a job succeeded (showing its output otherwise); returns it."""
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    return result


def failed(result):
    """Assert that a job failed (showing its output otherwise); returns it."""
    assert result.returncode != 0, result.stdout[-6000:]
    return result


def refused(result, field):
    """Assert that a job failed, naming `field`, without a Python traceback (each counted in the reliability report)."""
    failed(result)
    output = result.stdout + result.stderr
    check("bad input names the field", field in result.stdout, "%s not named in:\n%s" % (field, result.stdout[-3000:]))
    check("bad input shows no Python traceback", "Traceback" not in output and "MODULE FAILURE" not in output, output[-4000:])
    return result


@pytest.fixture
def operator(api_client, kube, namespace, kubevirt):
    """An operator stand-in with a Tenant whose VMs live in a namespace of their own."""
    del kubevirt  # only needed running
    op = Operator(api_client, kube.kubeconfig, GROUP)
    op.vm_namespace = namespace + "-vms"
    op.tenant(namespace, "acme", op.vm_namespace)
    yield op
    try:
        client.CoreV1Api(api_client).delete_namespace(op.vm_namespace)
    except client.ApiException as exc:
        if exc.status != 404:
            raise
