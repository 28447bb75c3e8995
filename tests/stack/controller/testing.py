"""Pytest helpers for tests that need the controller stand-in (pytest only reads conftest.py, so modules import this)."""
from __future__ import annotations

from pathlib import Path

import pytest

from . import ControllerServer

ROOT = Path(__file__).resolve().parents[3]
PLAYBOOK_DIR = ROOT / 'tests' / 'integration' / 'playbooks'
ORGANIZATION = 'cloudkit'


def controller_fixture(templates, scope: str = 'module', **kwargs):
    """A pytest fixture running a ControllerServer with these templates (project dir: tests/integration/playbooks).

    Usage in a test module: ``controller = controller_fixture(TEMPLATES, page_size=2)``.
    """
    kwargs.setdefault('project_dir', PLAYBOOK_DIR)

    @pytest.fixture(scope=scope)
    def controller():
        server = ControllerServer(templates=templates, **kwargs).start()
        try:
            yield server
        finally:
            server.stop()
    return controller


def compute_instance(name: str = 'vm1', namespace: str = 'tenant-a', uid: str = '6f1d2c2e-0000-4000-8000-000000000001',
                     group: str = 'cloudkit.openshift.io') -> dict:
    """A ComputeInstance object as the operator sends it."""
    return {
        'apiVersion': f'{group}/v1alpha1', 'kind': 'ComputeInstance',
        'metadata': {'name': name, 'namespace': namespace, 'uid': uid, 'resourceVersion': '1', 'generation': 1},
        'spec': {'templateID': 'cloudkit.templates.ocp_virt_vm', 'templateParameters': '{"cpu_cores": 2}'},
        'status': {'phase': 'Progressing', 'desiredConfigVersion': 'abc123'},
    }
