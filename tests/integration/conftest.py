"""Integration fixtures: run a playbook against the API under test (the shared `kube` fixture)."""

from __future__ import annotations

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
