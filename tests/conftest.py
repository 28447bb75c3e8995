"""Fixtures shared by every pytest suite: the Kubernetes API under test.

``CLOUDKIT_TEST_API`` chooses it (tests/stack/apis.py): ``stand-in`` (the default) is the in-process API server of
tests/stack/kubeapi; ``kube-apiserver`` (what ``make test`` sets) is a real control plane built from the Go modules
(tests/stack/controlplane.py) behind the proxy that adds the stand-in's fault switch and write log (tests/stack/proxy.py).
With CLOUDKIT_TEST_KUBECONFIG set it is that cluster instead: the CRDs in tests/stack/crds must be installed there, every
test works in its own fresh namespace, and tests that need the fault switch, the write log or the stand-in's internals skip.

Two markers record where the stand-in and kube-apiserver differ (tests/stack/kubeapi/README.md lists each difference):
``stand_in_only(reason)`` on a test of a behaviour only the stand-in has, ``real_api_only(reason)`` on a test of a
behaviour the stand-in lacks. On the other backend such a test runs as a strict xfail, so every run measures the difference:
once the stand-in behaves like kube-apiserver the XPASS fails the run until the marker and the README entry go.
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
from tests.stack import apis  # noqa: E402  pylint: disable=wrong-import-position

REAL_KUBECONFIG = os.environ.get('CLOUDKIT_TEST_KUBECONFIG')
CLUSTER = 'cluster'
# stand-in, kube-apiserver, or cluster (CLOUDKIT_TEST_KUBECONFIG).
BACKEND = CLUSTER if REAL_KUBECONFIG else apis.selected()
STAND_IN_ONLY = 'needs the kubeapi stand-in (its internals or fault switch); CLOUDKIT_TEST_KUBECONFIG points at a real cluster'
NEEDS_FRONT = "needs the fault switch or the write log of the local stack's API; CLOUDKIT_TEST_KUBECONFIG points at a real cluster"


class Kube:
    """The cluster under test: a kubeconfig, its backend, and the server with the fault switch and write log when there is one.

    ``server`` is the stand-in (``KubeAPIServer``) or the proxy-fronted control plane (``ControlPlaneAPI``): both have
    ``faults``, ``write_log()``, ``url`` and ``token``; None on a user's cluster.
    """

    def __init__(self, kubeconfig: str, server, backend: str = apis.STAND_IN):
        self.kubeconfig = kubeconfig
        self.server = server
        self.backend = backend

    @property
    def real(self) -> bool:
        """True on a user's cluster (CLOUDKIT_TEST_KUBECONFIG): real KubeVirt, maybe a real operator, no fault switch."""
        return self.server is None

    def api_client(self) -> client.ApiClient:
        """A new ApiClient for this cluster."""
        return config.new_client_from_config(self.kubeconfig)

    def require_local(self, why: str = 'needs the local stack'):
        """Skip the calling test on a user's cluster, saying ``why``."""
        if self.server is None:
            pytest.skip(f'{why}; CLOUDKIT_TEST_KUBECONFIG points at a real cluster')

    def require_server(self):
        """The server with the fault switch and the write log, or skip the calling test on a user's cluster."""
        if self.server is None:
            pytest.skip(NEEDS_FRONT)
        return self.server

    def require_stand_in(self, why: str = 'uses the stand-in\'s internals'):
        """The embedded stand-in, or skip the calling test (on kube-apiserver and on a user's cluster) saying ``why``."""
        if self.backend != apis.STAND_IN:
            pytest.skip(f'{why}: stand-in only' if self.server is not None else STAND_IN_ONLY)
        return self.server

    def new_api(self, **options):
        """A fresh API of this backend (not started; see tests/stack/apis.py), or skip on a user's cluster."""
        if self.server is None:
            pytest.skip('starts an API server of its own; CLOUDKIT_TEST_KUBECONFIG points at a real cluster')
        return apis.new_api(self.backend, **options)


@pytest.fixture(scope='session')
def kube(tmp_path_factory):
    """The cluster under test (session-scoped): the stand-in or kube-apiserver with tests/stack/crds, or CLOUDKIT_TEST_KUBECONFIG."""
    if REAL_KUBECONFIG:
        yield Kube(REAL_KUBECONFIG, None, CLUSTER)
        return
    work = tmp_path_factory.mktemp(BACKEND)
    server = apis.new_api(BACKEND, work_dir=work / 'api' if BACKEND == apis.KUBE_APISERVER else None).start()
    path = server.write_kubeconfig(work / 'kubeconfig')
    try:
        yield Kube(path, server, BACKEND)
    finally:
        server.faults.clear()
        server.stop()


def pytest_configure(config):  # pylint: disable=redefined-outer-name
    """The markers of known differences between the stand-in and kube-apiserver."""
    config.addinivalue_line('markers', 'stand_in_only(reason): a behaviour of the stand-in that kube-apiserver does not have '
                                       '(a strict xfail there; tests/stack/kubeapi/README.md)')
    config.addinivalue_line('markers', 'real_api_only(reason): a behaviour of kube-apiserver that the stand-in lacks '
                                       '(a strict xfail on the stand-in; tests/stack/kubeapi/README.md)')


def pytest_report_header():
    """Which Kubernetes API the run uses."""
    return f'Kubernetes API under test: {BACKEND} (CLOUDKIT_TEST_API / CLOUDKIT_TEST_KUBECONFIG)'


def pytest_collection_modifyitems(items):
    """Known differences run as strict xfails on the backend they do not hold for (skipped on a user's cluster)."""
    for item in items:
        for name, holds_on in (('stand_in_only', (apis.STAND_IN,)), ('real_api_only', (apis.KUBE_APISERVER, CLUSTER))):
            marker = item.get_closest_marker(name)
            if marker is None or BACKEND in holds_on:
                continue
            reason = marker.kwargs.get('reason') or (marker.args[0] if marker.args else name)
            if BACKEND == CLUSTER:
                item.add_marker(pytest.mark.skip(reason=f'{name}: {reason}'))
            else:
                item.add_marker(pytest.mark.xfail(strict=True, reason=f'known difference ({name}): {reason}'))


@pytest.fixture(scope='session')
def api_client(kube):
    """A session-wide kubernetes ApiClient for the cluster under test."""
    api = kube.api_client()
    yield api
    api.close()


@pytest.fixture
def instrumented_api(kube):
    """The API under test with its fault switch and write log: the stand-in, or the proxy-fronted kube-apiserver (skips on a
    user's cluster); its faults are cleared before and after the test."""
    server = kube.require_server()
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
