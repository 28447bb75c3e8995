"""Fixtures for integration tests: an API server (the stand-in, or a real cluster) and ansible-playbook."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REAL_CLUSTER_KUBECONFIG = os.environ.get("CLOUDKIT_TEST_KUBECONFIG")


@pytest.fixture(scope="session")
def kubeconfig(tmp_path_factory):
    """Path of a kubeconfig for the API under test: CLOUDKIT_TEST_KUBECONFIG, else a fresh stand-in."""
    if REAL_CLUSTER_KUBECONFIG:
        yield REAL_CLUSTER_KUBECONFIG
        return
    from tests.stack.kubeapi import KubeAPIServer

    path = tmp_path_factory.mktemp("kubeapi") / "kubeconfig"
    with KubeAPIServer(crd_paths=[ROOT / "tests" / "stack" / "crds"]) as server:
        server.write_kubeconfig(str(path))
        yield str(path)


@pytest.fixture
def namespace():
    """A fresh namespace name per test; the playbooks create it."""
    return "it-" + uuid.uuid4().hex[:10]


@pytest.fixture
def run_playbook(kubeconfig):
    """Run a playbook against the API under test; returns the CompletedProcess."""
    created = []

    def run(playbook, namespace, **env):
        created.append(namespace)
        environment = dict(os.environ)
        environment.update(
            K8S_AUTH_KUBECONFIG=kubeconfig,
            ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".build"),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
            TEST_NAMESPACE=namespace,
        )
        environment.update(env)
        command = [str(Path(sys.executable).with_name("ansible-playbook")), str(ROOT / "tests" / "integration" / "playbooks" / playbook)]
        return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600, check=False)

    yield run
    if REAL_CLUSTER_KUBECONFIG:
        import kubernetes

        api = kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(config_file=kubeconfig))
        for name in created:
            try:
                api.delete_namespace(name)
            except kubernetes.client.ApiException as exc:
                if exc.status != 404:
                    raise
