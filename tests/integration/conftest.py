"""Integration fixtures: run a playbook against the API under test (the shared `kube` fixture)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


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


def recap_changed(result):
    """The changed= count of the play recap."""
    for line in result.stdout.splitlines():
        if line.startswith("localhost") and "changed=" in line:
            return int(line.split("changed=")[1].split()[0])
    raise AssertionError("no play recap in:\n" + result.stdout[-3000:])
