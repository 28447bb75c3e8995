"""Fixtures of the reliability suite: one local stack for all its tests, and a scenario per test (tests/conftest.py prints the report)."""
from __future__ import annotations

import os
import sys

import pytest
from kubernetes import client, config

from tests.reliability.harness import ReliableScenario
from tests.stack.local import LocalStack


@pytest.fixture(scope='session')
def stack(tmp_path_factory):
    """API, KubeVirt, controller and EDA stand-ins (tests/stack/local.py), started once: ansible-rulebook takes a while."""
    if os.environ.get('CLOUDKIT_TEST_KUBECONFIG'):
        pytest.skip('the reliability suite needs the API stand-in: its fault switch and its write log (the overlap audit)')
    # VMs get Ready 2 s after they start: long enough for actions to land while a provision waits for its VM.
    with LocalStack(tmp_path_factory.mktemp('reliability'), ready_delay=2.0, import_delay=0.3, rulebook=True) as local:
        # Disks may grow in the interleavings: the default StorageClass allows volume expansion (a field a cluster admin may change).
        api_client = config.new_client_from_config(config_file=local.kubeconfig)
        try:
            client.StorageV1Api(api_client).patch_storage_class('standard', {'allowVolumeExpansion': True})
        finally:
            api_client.close()
        yield local


@pytest.fixture
def scenario_in(stack):
    """``scenario_in(namespace)``: a ReliableScenario with its namespaces and Tenant, printing progress; stopped after the test."""
    made = []

    def make(namespace: str) -> ReliableScenario:
        played = ReliableScenario(stack, namespace, out=sys.stdout)
        played.prepare()
        made.append(played)
        return played

    yield make
    for played in made:
        played.close()
