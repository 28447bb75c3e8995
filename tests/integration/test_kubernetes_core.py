"""kubernetes.core's k8s, k8s_info and k8s_json_patch work against the API under test."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("api_group", ["cloudkit.openshift.io", "osac.openshift.io"])
def test_kubernetes_core_playbook(run_playbook, namespace, api_group):
    result = run_playbook("kubernetes_core.yml", namespace, TEST_API_GROUP=api_group)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "failed=0" in result.stdout
