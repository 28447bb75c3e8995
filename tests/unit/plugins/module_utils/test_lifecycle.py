"""Unit tests for plugins/module_utils/lifecycle.py: conflicts on unguarded writes, restarts of a VM that is not running."""

from __future__ import annotations

import pytest

from ansible_collections.cloudkit.provisioning.plugins.module_utils import kube, lifecycle
from ansible_collections.cloudkit.provisioning.plugins.module_utils.computeinstance import ComputeInstance, vm_parameters
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kubevirt import VIRTUAL_MACHINE
from ansible_collections.cloudkit.provisioning.plugins.module_utils.names import Names

NAMES = Names()
SPEC = {"templateID": "cloudkit.templates.ocp_virt_vm", "restartRequestedAt": "2026-01-01T00:00:00Z"}


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    """Retries do not wait."""
    monkeypatch.setattr(lifecycle.CONFLICT_RETRY, "sleep", lambda _seconds: None)


def flaky(failures, result="done"):
    """A write that raises the given errors first, then returns `result`; `calls` counts the attempts."""
    pending = list(failures)

    def write():
        write.calls += 1
        if pending:
            raise pending.pop(0)
        return result
    write.calls = 0
    return write


def conflict():
    """A 409 Conflict as the API answers a write it refused."""
    return kube.Conflict("the object has been modified", status=409, reason="Conflict")


def test_unguarded_write_is_sent_again_after_conflicts():
    """A write without a precondition is simply sent again after a 409."""
    write = flaky([conflict(), conflict()])
    assert lifecycle.retry_conflicts(write) == "done"
    assert write.calls == 3


def test_unguarded_write_gives_up_and_never_retries_already_exists():
    """Bounded; and AlreadyExists is an answer, not a transient."""
    write = flaky([conflict()] * lifecycle.CONFLICT_RETRY.attempts)
    with pytest.raises(kube.Conflict):
        lifecycle.retry_conflicts(write)
    assert write.calls == lifecycle.CONFLICT_RETRY.attempts
    exists = flaky([kube.AlreadyExists("already exists", status=409, reason="AlreadyExists")])
    with pytest.raises(kube.AlreadyExists):
        lifecycle.retry_conflicts(exists)
    assert exists.calls == 1


def test_stopping_the_vm_survives_a_conflict(fake):
    """A delete job does not fail (and block the deletion) over one refused patch of the VM."""
    fake.put(VIRTUAL_MACHINE, {"kind": "VirtualMachine", "metadata": {"name": "vm1", "namespace": "vms"}, "spec": {"runStrategy": "Always"}})
    patch = fake.patch
    errors = [conflict()]

    def patch_once_refused(*args, **kwargs):
        if errors:
            raise errors.pop()
        return patch(*args, **kwargs)
    fake.patch = patch_once_refused
    outcome = lifecycle.ensure_absent(fake, "vm1", "u-1", NAMES, "vms", wait=False)
    assert outcome.state == "Succeeded" and fake.get_or_none(VIRTUAL_MACHINE, "vm1", "vms") is None


def test_restart_requested_before_the_vm_runs_is_served_by_its_start(fake):
    """No running VMI to restart: the VM's start serves the request, and it is recorded as served."""
    instance = ComputeInstance({"metadata": {"name": "vm1", "namespace": "tenants", "uid": "u-1"}, "spec": SPEC, "status": {}}, NAMES)
    outcome = lifecycle.ensure_present(fake, instance, vm_parameters(SPEC), "vms", storage_class="standard", wait=False)
    assert outcome.restarted_at == SPEC["restartRequestedAt"], "reported served, so lastRestartedAt records it"
    served = ComputeInstance({"metadata": {"name": "vm1", "namespace": "tenants", "uid": "u-1"}, "spec": SPEC,
                              "status": {"lastRestartedAt": outcome.restarted_at}}, NAMES)
    again = lifecycle.ensure_present(fake, served, vm_parameters(SPEC), "vms", storage_class="standard", wait=False)
    assert again.restarted_at is None and not again.changed, "a later run does not restart for it again"


def test_a_never_provisioned_instance_creates_first_and_reads_nothing_before(fake):
    instance = ComputeInstance({"metadata": {"name": "vm1", "namespace": "tenants", "uid": "u-1"}, "spec": SPEC, "status": {}}, NAMES)
    outcome = lifecycle.ensure_present(fake, instance, vm_parameters(SPEC), "vms", storage_class="standard", wait=False)
    assert len(outcome.created) == 4 and not fake.reads


def test_create_first_falls_back_to_read_and_update_when_an_object_exists(fake):
    """A provision that failed before its annotation left objects behind: AlreadyExists, then the usual read and diff."""
    instance = ComputeInstance({"metadata": {"name": "vm1", "namespace": "tenants", "uid": "u-1"}, "spec": SPEC, "status": {}}, NAMES)
    lifecycle.ensure_present(fake, instance, vm_parameters(SPEC), "vms", storage_class="standard", wait=False)
    bigger = dict(SPEC, templateParameters='{"cpu_cores": 4}')
    outcome = lifecycle.ensure_present(fake, instance, vm_parameters(bigger), "vms", storage_class="standard", wait=False)
    assert not outcome.created and outcome.updated
    sent = [patch for patch_type, _sub, patch in fake.writes if patch_type == "merge" and "template" in patch.get("spec", {})]
    assert [patch["spec"]["template"]["spec"]["domain"]["cpu"]["cores"] for patch in sent] == [4]


def test_a_provisioned_instance_reads_before_it_writes(fake):
    spec = {"templateID": SPEC["templateID"]}
    provisioned = {"metadata": {"name": "vm1", "namespace": "tenants", "uid": "u-1",
                                "annotations": {NAMES.reconciled_config_version_annotation: "v1"}}, "spec": spec, "status": {}}
    lifecycle.ensure_present(fake, ComputeInstance(provisioned, NAMES), vm_parameters(spec), "vms", storage_class="standard", wait=False)
    fake.reads.clear()
    outcome = lifecycle.ensure_present(fake, ComputeInstance(provisioned, NAMES), vm_parameters(spec), "vms", storage_class="standard", wait=False)
    assert not outcome.changed and [kind for _verb, kind in fake.reads][:4] == ["Secret", "DataVolume", "VirtualMachine", "Service"]
