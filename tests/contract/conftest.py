"""Fixtures of the Kubernetes API contract suite beyond the shared ones in tests/conftest.py."""
from __future__ import annotations

import pytest

from tests.conftest import REAL_KUBECONFIG, STAND_IN_ONLY, Kube
from tests.stack.kubeapi import DEFAULT_CRD_DIR, KubeAPIServer


@pytest.fixture(scope='module')
def small_history_server(tmp_path_factory):
    """A dedicated stand-in whose watch history holds only 5 events, to reach 410 Expired quickly."""
    if REAL_KUBECONFIG:
        pytest.skip(STAND_IN_ONLY)
    server = KubeAPIServer(crd_paths=[DEFAULT_CRD_DIR], history=5).start()
    path = server.write_kubeconfig(tmp_path_factory.mktemp('kubeapi-small') / 'kubeconfig')
    try:
        yield Kube(path, server)
    finally:
        server.stop()
