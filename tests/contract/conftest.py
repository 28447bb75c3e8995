"""Fixtures of the Kubernetes API contract suite beyond the shared ones in tests/conftest.py."""
from __future__ import annotations

import pytest

from tests.conftest import Kube
from tests.stack.kubeapi import DEFAULT_CRD_DIR, KubeAPIServer

SMALL_HISTORY = ('a 5-event watch history, to reach 410 Expired after a few writes, is an option of the stand-in; kube-apiserver '
                 'keeps minutes of events in its watch cache and etcd keeps every revision until its 5-minute compaction')


@pytest.fixture(scope='module')
def small_history_server(kube, tmp_path_factory):
    """A dedicated stand-in whose watch history holds only 5 events, to reach 410 Expired quickly."""
    kube.require_stand_in(SMALL_HISTORY)
    server = KubeAPIServer(crd_paths=[DEFAULT_CRD_DIR], history=5).start()
    path = server.write_kubeconfig(tmp_path_factory.mktemp('kubeapi-small') / 'kubeconfig')
    try:
        yield Kube(path, server)
    finally:
        server.stop()
