"""finalizer, computeinstance_info and computeinstance_status from a playbook, against a seeded instance."""

from __future__ import annotations

import pytest

from tests.stack.seed import seed


@pytest.mark.parametrize("api_group", ["cloudkit.openshift.io", "osac.openshift.io"])
def test_core_modules_playbook(api_client, run_playbook, namespace, api_group):
    seed(api_client, api_group, namespace, "acme", "tenant-acme", "demo-vm")
    result = run_playbook("core_modules.yml", namespace, TEST_API_GROUP=api_group)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-3000:]
    assert "failed=0" in result.stdout
