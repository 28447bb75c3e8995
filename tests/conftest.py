"""Fixtures shared by every pytest suite: the Kubernetes API under test.

By default that is the in-process stand-in (tests/stack/kubeapi). With CLOUDKIT_TEST_KUBECONFIG set it is that
cluster instead: the CRDs in tests/stack/crds must be installed there, every test works in its own fresh namespace,
and tests that need the stand-in's internals (fault switch, small watch history, bulk loading) skip.
"""
from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The repo root (for tests.stack) and .build, where tools/sync-collection.sh puts ansible_collections/.
for path in (ROOT, ROOT / '.build'):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from kubernetes import client, config  # noqa: E402  pylint: disable=wrong-import-position

from tests.reliability_report import write_summary  # noqa: E402  pylint: disable=wrong-import-position
from tests.stack.kubeapi import DEFAULT_CRD_DIR, KubeAPIServer  # noqa: E402  pylint: disable=wrong-import-position

REAL_KUBECONFIG = os.environ.get('CLOUDKIT_TEST_KUBECONFIG')
STAND_IN_ONLY = 'needs the kubeapi stand-in (its internals or fault switch); CLOUDKIT_TEST_KUBECONFIG points at a real cluster'


class Kube:
    """The cluster under test: a kubeconfig, and the stand-in server when there is one."""

    def __init__(self, kubeconfig: str, server: KubeAPIServer | None):
        self.kubeconfig = kubeconfig
        self.server = server

    @property
    def real(self) -> bool:
        """True when talking to a real cluster."""
        return self.server is None

    def api_client(self) -> client.ApiClient:
        """A new ApiClient for this cluster."""
        return config.new_client_from_config(self.kubeconfig)

    def require_stand_in(self) -> KubeAPIServer:
        """The stand-in, or skip the calling test on a real cluster."""
        if self.server is None:
            pytest.skip(STAND_IN_ONLY)
        return self.server


@pytest.fixture(scope='session')
def kube(tmp_path_factory):
    """The cluster under test (session-scoped): the stand-in with tests/stack/crds, or CLOUDKIT_TEST_KUBECONFIG."""
    if REAL_KUBECONFIG:
        yield Kube(REAL_KUBECONFIG, None)
        return
    server = KubeAPIServer(crd_paths=[DEFAULT_CRD_DIR], bookmark_interval=0.5).start()
    path = server.write_kubeconfig(tmp_path_factory.mktemp('kubeapi') / 'kubeconfig')
    try:
        yield Kube(path, server)
    finally:
        server.faults.clear()
        server.stop()


@pytest.fixture(scope='session')
def api_client(kube):
    """A session-wide kubernetes ApiClient for the cluster under test."""
    api = kube.api_client()
    yield api
    api.close()


@pytest.fixture
def stand_in(kube):
    """The stand-in server (skips on a real cluster); its faults are cleared after the test."""
    server = kube.require_stand_in()
    server.faults.clear()
    yield server
    server.faults.clear()


@pytest.fixture
def namespace(api_client):
    """A fresh namespace with a random name, deleted after the test."""
    name = f'ct-{uuid.uuid4().hex[:10]}'
    core = client.CoreV1Api(api_client)
    core.create_namespace({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': name}})
    yield name
    try:
        core.delete_namespace(name)
    except client.ApiException as exc:
        if exc.status != 404:
            raise


def pytest_terminal_summary(terminalreporter):
    """Print the reliability report (checks and violations per invariant) of any suite whose tests recorded some."""
    write_summary(terminalreporter)
