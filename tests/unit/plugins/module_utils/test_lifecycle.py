"""Unit tests for plugins/module_utils/lifecycle.py: conflicts on unguarded writes, restarts of a VM that is not running."""

from __future__ import annotations

import pytest

from ansible_collections.cloudkit.provisioning.plugins.module_utils import kube_errors, lifecycle
from ansible_collections.cloudkit.provisioning.plugins.module_utils.computeinstance import ComputeInstance, vm_parameters
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kubevirt import VIRTUAL_MACHINE
from ansible_collections.cloudkit.provisioning.plugins.module_utils.names import Names
from ansible_collections.cloudkit.provisioning.tests.unit.plugins.module_utils.test_retry import flaky

NAMES = Names()
SPEC = {"templateID": "cloudkit.templates.ocp_virt_vm", "restartRequestedAt": "2026-01-01T00:00:00Z"}


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    """Retries do not wait."""
    monkeypatch.setattr(lifecycle.CONFLICT_RETRY, "sleep", lambda _seconds: None)


def conflict():
    """A 409 Conflict as the API answers a write it refused."""
    return kube_errors.Conflict("the object has been modified", status=409, reason="Conflict")


def test_unguarded_write_is_sent_again_after_conflicts():
    """A write without a precondition is simply sent again after a 409."""
    write = flaky([conflict(), conflict()])
    assert lifecycle.retry_conflicts(write) == "done"
    assert write.calls == 3


def test_unguarded_write_gives_up_and_never_retries_already_exists():
    """Bounded; and AlreadyExists is an answer, not a transient."""
    write = flaky([conflict()] * lifecycle.CONFLICT_RETRY.attempts)
    with pytest.raises(kube_errors.Conflict):
        lifecycle.retry_conflicts(write)
    assert write.calls == lifecycle.CONFLICT_RETRY.attempts
    exists = flaky([kube_errors.AlreadyExists("already exists", status=409, reason="AlreadyExists")])
    with pytest.raises(kube_errors.AlreadyExists):
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


def test_a_never_provisioned_instance_lists_its_objects_then_creates(fake):
    instance = ComputeInstance({"metadata": {"name": "vm1", "namespace": "tenants", "uid": "u-1"}, "spec": SPEC, "status": {}}, NAMES)
    outcome = lifecycle.ensure_present(fake, instance, vm_parameters(SPEC), "vms", storage_class="standard", wait=False)
    assert len(outcome.created) == 4 and [a["action"] for a in outcome.changes] == ["created"] * 4
    assert fake.reads == [("list", "Secret"), ("list", "DataVolume"), ("list", "VirtualMachine"), ("list", "Service"), ("list", "StorageClass")]


def test_objects_of_an_unreconciled_provision_are_found_by_their_labels_and_set_exactly(fake):
    """A provision that failed before its annotation left objects behind: they are listed, compared, and patched."""
    instance = ComputeInstance({"metadata": {"name": "vm1", "namespace": "tenants", "uid": "u-1"}, "spec": SPEC, "status": {}}, NAMES)
    lifecycle.ensure_present(fake, instance, vm_parameters(SPEC), "vms", storage_class="standard", wait=False)
    bigger = dict(SPEC, templateParameters='{"cpu_cores": 4}')
    outcome = lifecycle.ensure_present(fake, instance, vm_parameters(bigger), "vms", storage_class="standard", wait=False)
    assert not outcome.created and outcome.updated == ["VirtualMachine vms/vm1"]
    assert [c["fields"] for c in outcome.changes if c["action"] == "updated"] == [["spec.template.spec.domain.cpu.cores 2 -> 4"]]
    sent = [patch for patch_type, _sub, patch in fake.writes if patch_type == "json"]
    assert sent == [[{"op": "test", "path": "/spec/template/spec/domain/cpu/cores", "value": 2},
                     {"op": "replace", "path": "/spec/template/spec/domain/cpu/cores", "value": 4}]]


def test_a_provisioned_instance_reads_before_it_writes(fake):
    spec = {"templateID": SPEC["templateID"]}
    provisioned = {"metadata": {"name": "vm1", "namespace": "tenants", "uid": "u-1",
                                "annotations": {NAMES.reconciled_config_version_annotation: "v1"}}, "spec": spec, "status": {}}
    lifecycle.ensure_present(fake, ComputeInstance(provisioned, NAMES), vm_parameters(spec), "vms", storage_class="standard", wait=False)
    fake.reads.clear()
    fake.writes.clear()
    outcome = lifecycle.ensure_present(fake, ComputeInstance(provisioned, NAMES), vm_parameters(spec), "vms", storage_class="standard", wait=False)
    assert not outcome.changed and not fake.writes and [kind for _verb, kind in fake.reads][:4] == ["Secret", "DataVolume", "VirtualMachine", "Service"]
    assert [a["action"] for a in outcome.changes] == ["unchanged"] * 4


KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f me@host"


def test_objects_the_spec_no_longer_wants_are_deleted_exactly(fake):
    """The key Secret and the Service go once the key is removed and the ports closed; found by the uid label."""
    spec = dict(SPEC, templateParameters='{"ssh_public_key": "%s", "exposed_ports": "22/tcp,8080/tcp"}' % KEY)
    instance = ComputeInstance({"metadata": {"name": "vm1", "namespace": "tenants", "uid": "u-1"}, "spec": spec, "status": {}}, NAMES)
    lifecycle.ensure_present(fake, instance, vm_parameters(spec), "vms", storage_class="standard", wait=False)
    fake.writes.clear()
    closed = dict(SPEC, templateParameters='{"cpu_cores": 1, "exposed_ports": []}')
    outcome = lifecycle.ensure_present(fake, ComputeInstance(dict(instance.obj, spec=closed), NAMES), vm_parameters(closed), "vms",
                                       storage_class="standard", wait=False)
    assert sorted(outcome.deleted) == ["Secret vms/vm1-ssh-public-key", "Service vms/vm1-load-balancer"]
    assert ("delete", None, "vm1-ssh-public-key") in fake.writes and ("delete", None, "vm1-load-balancer") in fake.writes
    vm = fake.get(VIRTUAL_MACHINE, "vm1", "vms")
    assert "accessCredentials" not in vm["spec"]["template"]["spec"] and vm["spec"]["template"]["spec"]["domain"]["cpu"]["cores"] == 1
    positions = [pos for pos, write in enumerate(fake.writes) if write[0] == "delete"]
    assert min(positions) > max(pos for pos, write in enumerate(fake.writes) if write[0] == "json"), "deleted after the VM let go of them"


def test_a_refused_change_writes_nothing(fake):
    instance = ComputeInstance({"metadata": {"name": "vm1", "namespace": "tenants", "uid": "u-1"}, "spec": SPEC, "status": {}}, NAMES)
    lifecycle.ensure_present(fake, instance, vm_parameters(SPEC), "vms", storage_class="standard", wait=False)
    fake.writes.clear()
    other = dict(SPEC, templateParameters='{"image": "quay.io/containerdisks/centos:9", "cpu_cores": 1}')
    outcome = lifecycle.ensure_present(fake, ComputeInstance(dict(instance.obj, spec=other), NAMES), vm_parameters(other), "vms",
                                       storage_class="standard", wait=False)
    assert outcome.state == "Failed" and outcome.blocked and not fake.writes
    assert [r["field"] for r in outcome.refused] == ["spec.templateParameters.image"]
    assert "spec.templateParameters.image" in outcome.message


def test_a_vmi_that_came_up_from_an_older_template_is_restarted_again(fake):
    """KubeVirt's cache lagged behind the VM's patch and started the new VMI from the old template: Ready must wait for
    a VMI that carries the desired template, restarting the stale one."""
    from ansible_collections.cloudkit.provisioning.plugins.module_utils.kubevirt import VIRTUAL_MACHINE_INSTANCE
    instance = ComputeInstance({"metadata": {"name": "vm1", "namespace": "tenants", "uid": "u-1"}, "spec": SPEC, "status": {}}, NAMES)
    lifecycle.ensure_present(fake, instance, vm_parameters(SPEC), "vms", storage_class="standard", wait=False)
    vm = fake.get(VIRTUAL_MACHINE, "vm1", "vms")
    fake.put(VIRTUAL_MACHINE, dict(vm, status={"printableStatus": "Running", "conditions": [{"type": "Ready", "status": "True"}]}))

    def vmi(cores, uid):
        template = fake.get(VIRTUAL_MACHINE, "vm1", "vms")["spec"]["template"]
        spec = dict(template["spec"], domain=dict(template["spec"]["domain"], cpu={"cores": cores}))
        return {"kind": "VirtualMachineInstance", "metadata": {"name": "vm1", "namespace": "vms", "uid": uid,
                                                               "annotations": template["metadata"].get("annotations", {})},
                "spec": spec, "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    fake.put(VIRTUAL_MACHINE_INSTANCE, vmi(2, "first"))
    started = iter([vmi(2, "stale"), vmi(4, "fresh")])  # what KubeVirt starts after each deletion
    delete = fake.delete

    def restart(resource, name, namespace=None, propagation_policy="Background", preconditions=None):
        gone = delete(resource, name, namespace, propagation_policy, preconditions)
        if resource is VIRTUAL_MACHINE_INSTANCE:
            fake.put(VIRTUAL_MACHINE_INSTANCE, next(started))
        return gone
    fake.delete = restart
    bigger = dict(SPEC, templateParameters='{"cpu_cores": 4}', restartRequestedAt=None)
    spec_served = ComputeInstance({"metadata": {"name": "vm1", "namespace": "tenants", "uid": "u-1"}, "spec": bigger, "status": {}}, NAMES)
    outcome = lifecycle.ensure_present(fake, spec_served, vm_parameters(bigger), "vms", storage_class="standard", timeout=5)
    assert outcome.state == "Succeeded", outcome.message
    assert fake.get(VIRTUAL_MACHINE_INSTANCE, "vm1", "vms")["metadata"]["uid"] == "fresh"
    assert any("came up without spec.template.spec.domain.cpu.cores: restarted again" in note for note in outcome.notes), outcome.notes
