"""The create and delete playbooks (what the AAP job templates run) against the stand-ins, end to end."""

from __future__ import annotations

import uuid

import pytest
from kubernetes import client

from tests.integration.conftest import failed, ok, recap_changed
from tests.integration.instances import Operator, envelope

GROUP = "cloudkit.openshift.io"
RECONCILED = GROUP + "/reconciled-config-version"
OURS = GROUP + "/computeinstance-aap"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f me@x"


def events(api_client, namespace, name):
    items = client.CoreV1Api(api_client).list_namespaced_event(namespace).items
    return [(e.reason, e.type, e.message) for e in items if e.involved_object.name == name]


def vmi_uid(api_client, namespace, name):
    return client.CustomObjectsApi(api_client).get_namespaced_custom_object("kubevirt.io", "v1", namespace, "virtualmachineinstances", name)["metadata"]["uid"]


def test_create_is_ready_reconciled_and_idempotent(operator, run_job, namespace, api_client):
    instance = operator.create(namespace, "vm1", {"cpu_cores": 2, "memory": "4Gi", "ssh_public_key": KEY})
    ok(run_job("create_compute_instance.yml", envelope(instance)))
    live = operator.get(namespace, "vm1")
    assert live["metadata"]["annotations"][RECONCILED] == live["status"]["desiredConfigVersion"]
    assert OURS in live["metadata"]["finalizers"] and GROUP + "/computeinstance" in live["metadata"]["finalizers"]
    assert live["status"]["phase"] == "Ready"
    assert live["status"]["virtualMachineReference"] == {"namespace": operator.vm_namespace, "kubeVirtVirtualMachineName": "vm1"}
    conditions = dict((c["type"], c["status"]) for c in live["status"]["conditions"])
    assert conditions == {"Accepted": "True", "Progressing": "False", "Available": "True"}
    uid = live["metadata"]["uid"]
    assert operator.objects(operator.vm_namespace, uid) == [
        "DataVolume/vm1-root-disk", "Secret/vm1-cloud-init", "Secret/vm1-ssh-public-key", "Service/vm1-load-balancer",
        "VirtualMachine/vm1", "VirtualMachineInstance/vm1"]
    disk = client.CustomObjectsApi(api_client).get_namespaced_custom_object("cdi.kubevirt.io", "v1beta1", operator.vm_namespace, "datavolumes",
                                                                            "vm1-root-disk")
    assert disk["spec"]["storage"]["storageClassName"] == "standard", "the cluster's default StorageClass"
    assert ("PhaseReady", "Normal") in [(r, t) for r, t, _m in events(api_client, namespace, "vm1")]

    again = ok(run_job("create_compute_instance.yml", envelope(operator.get(namespace, "vm1"))))
    assert recap_changed(again) == 0, again.stdout[-4000:]


def test_spec_change_reprovisions_and_restart_is_served(operator, run_job, namespace, api_client):
    operator.create(namespace, "vm2", {"cpu_cores": 2})
    ok(run_job("create_compute_instance.yml", envelope(operator.get(namespace, "vm2"), "hand")))
    first_vmi = vmi_uid(api_client, operator.vm_namespace, "vm2")

    operator.change_spec(namespace, "vm2", parameters={"cpu_cores": 4})
    ok(run_job("create_compute_instance.yml", envelope(operator.get(namespace, "vm2"), "hand")))
    live = operator.get(namespace, "vm2")
    assert live["metadata"]["annotations"][RECONCILED] == live["status"]["desiredConfigVersion"]
    vm = client.CustomObjectsApi(api_client).get_namespaced_custom_object("kubevirt.io", "v1", operator.vm_namespace, "virtualmachines", "vm2")
    assert vm["spec"]["template"]["spec"]["domain"]["cpu"]["cores"] == 4
    second_vmi = vmi_uid(api_client, operator.vm_namespace, "vm2")
    assert second_vmi != first_vmi, "the running VM was restarted to take the new cores"

    operator.change_spec(namespace, "vm2", restartRequestedAt="2030-01-01T00:00:00Z")
    ok(run_job("create_compute_instance.yml", envelope(operator.get(namespace, "vm2"), "hand")))
    live = operator.get(namespace, "vm2")
    assert live["status"]["lastRestartedAt"] == "2030-01-01T00:00:00Z"
    assert vmi_uid(api_client, operator.vm_namespace, "vm2") != second_vmi
    assert live["metadata"]["annotations"][RECONCILED] == live["status"]["desiredConfigVersion"]


def test_delete_removes_everything_then_the_finalizer(operator, run_job, namespace):
    operator.create(namespace, "vm3", {})
    ok(run_job("create_compute_instance.yml", envelope(operator.get(namespace, "vm3"))))
    uid = operator.get(namespace, "vm3")["metadata"]["uid"]
    operator.delete(namespace, "vm3")
    ok(run_job("delete_compute_instance.yml", envelope(operator.get(namespace, "vm3"))))
    assert operator.objects(operator.vm_namespace, uid) == []
    live = operator.get(namespace, "vm3")
    assert OURS not in live["metadata"]["finalizers"] and live["status"]["phase"] == "Deleting"
    operator.release(namespace, "vm3")
    assert operator.get(namespace, "vm3") is None
    again = ok(run_job("delete_compute_instance.yml", envelope(live)))
    assert "it does not exist" in again.stdout


def test_delete_does_not_need_the_tenant(operator, run_job, namespace):
    operator.create(namespace, "vm4", {})
    ok(run_job("create_compute_instance.yml", envelope(operator.get(namespace, "vm4"))))
    uid = operator.get(namespace, "vm4")["metadata"]["uid"]
    operator.delete_tenant(namespace, "acme")
    operator.delete(namespace, "vm4")
    ok(run_job("delete_compute_instance.yml", envelope(operator.get(namespace, "vm4"))))
    assert operator.objects(operator.vm_namespace, uid) == []
    assert OURS not in operator.get(namespace, "vm4")["metadata"]["finalizers"]


def test_failed_provision_reports_and_never_reconciles(operator, run_job, namespace, api_client):
    operator.create(namespace, "vm5", {"image": "quay.io/example/error-pull:1"})
    result = failed(run_job("create_compute_instance.yml", dict(envelope(operator.get(namespace, "vm5")), compute_instance_wait_timeout=20)))
    assert "ErrImagePull" in result.stdout
    live = operator.get(namespace, "vm5")
    assert RECONCILED not in (live["metadata"].get("annotations") or {})
    assert live["status"]["phase"] == "Failed"
    available = next(c for c in live["status"]["conditions"] if c["type"] == "Available")
    assert available["status"] == "False" and "ErrImagePull" in available["message"]
    assert any(r == "PhaseFailed" and t == "Warning" and "ErrImagePull" in m for r, t, m in events(api_client, namespace, "vm5"))


def test_invalid_parameters_fail_naming_the_field_and_create_nothing(operator, run_job, namespace):
    operator.create(namespace, "vm6", {"cpu_cores": "lots", "exposed_ports": "22/icmp"})
    result = failed(run_job("create_compute_instance.yml", envelope(operator.get(namespace, "vm6"))))
    assert "spec.templateParameters.cpu_cores" in result.stdout and "spec.templateParameters.exposed_ports" in result.stdout
    live = operator.get(namespace, "vm6")
    assert operator.objects(operator.vm_namespace, live["metadata"]["uid"]) == []
    assert live["status"]["phase"] == "Failed"
    assert "spec.templateParameters.cpu_cores" in next(c for c in live["status"]["conditions"] if c["type"] == "Progressing")["message"]
    assert OURS not in live["metadata"]["finalizers"], "nothing was written before validation"


@pytest.mark.parametrize("name, limit", [
    ("x" * 50, "a DNS-1035 label (a Service name) has at most 63"),  # x...x-load-balancer is 64 characters
    ("x" * 49, "a DNS-1123 label has at most 63"),  # x...x-ssh-public-key is 64 characters
])
def test_a_name_kubernetes_would_refuse_fails_before_anything_is_created(operator, run_job, namespace, name, limit):
    """The API server would refuse the 64-character Service or Secret name halfway through; the job refuses it first."""
    operator.create(namespace, name, {"ssh_public_key": KEY, "exposed_ports": "22/tcp"})
    result = failed(run_job("create_compute_instance.yml", envelope(operator.get(namespace, name))))
    assert "metadata.name" in result.stdout and limit in result.stdout
    live = operator.get(namespace, name)
    assert operator.objects(operator.vm_namespace, live["metadata"]["uid"]) == []
    assert live["status"]["phase"] == "Failed"
    message = next(c for c in live["status"]["conditions"] if c["type"] == "Progressing")["message"]
    assert "metadata.name" in message and limit in message and name in message
    assert RECONCILED not in (live["metadata"].get("annotations") or {})


def test_template_off_the_allow_list_runs_nothing(operator, run_job, namespace):
    operator.create(namespace, "vm7", {}, templateID="some.other.role")
    result = failed(run_job("create_compute_instance.yml", envelope(operator.get(namespace, "vm7"))))
    assert "not an allowed template" in result.stdout
    assert operator.objects(operator.vm_namespace, operator.get(namespace, "vm7")["metadata"]["uid"]) == []


def test_manual_instances_are_left_alone(operator, run_job, namespace):
    operator.create(namespace, "vm8", {}, annotations={GROUP + "/management-state": "manual"})
    result = ok(run_job("create_compute_instance.yml", envelope(operator.get(namespace, "vm8"))))
    assert "management-state is manual" in result.stdout
    live = operator.get(namespace, "vm8")
    assert operator.objects(operator.vm_namespace, live["metadata"]["uid"]) == [] and OURS not in live["metadata"]["finalizers"]


def _hold_disk(api_client, namespace, name):
    """A foreign finalizer on the disk makes the delete fail to finish."""
    api = client.CustomObjectsApi(api_client)
    api.patch_namespaced_custom_object("cdi.kubevirt.io", "v1beta1", namespace, "datavolumes", name, {"metadata": {"finalizers": ["test.example.com/hold"]}})


@pytest.mark.parametrize("block", [True, False])
def test_failed_delete_blocks_or_lets_go(operator, run_job, namespace, api_client, block):
    name = "vm9-%s" % ("block" if block else "free")
    operator.create(namespace, name, {})
    ok(run_job("create_compute_instance.yml", envelope(operator.get(namespace, name))))
    _hold_disk(api_client, operator.vm_namespace, name + "-root-disk")
    operator.delete(namespace, name)
    extra_vars = dict(envelope(operator.get(namespace, name)), compute_instance_wait_timeout=3, compute_instance_block_deletion_on_failure=block)
    result = failed(run_job("delete_compute_instance.yml", extra_vars))
    assert "still exists" in result.stdout
    live = operator.get(namespace, name)
    if block:
        assert OURS in live["metadata"]["finalizers"], "the instance is kept so nothing is orphaned"
        assert live["status"]["phase"] == "Failed"
        deleting = next(c for c in live["status"]["conditions"] if c["type"] == "Deleting")
        assert deleting["status"] == "False" and "still exists" in deleting["message"]
    else:
        assert OURS not in live["metadata"]["finalizers"], "the operator gets its terminal signal"
        warnings = [m for r, t, m in events(api_client, namespace, name) if r == "DeprovisionIncomplete" and t == "Warning"]
        assert warnings and "computeinstance-uuid=" + live["metadata"]["uid"] in warnings[0]


@pytest.mark.parametrize("group, shape", [("osac.openshift.io", "osac"), ("osac.openshift.io", "eda")])
def test_later_group_and_envelope(api_client, kube, namespace, kubevirt, run_job, group, shape):
    del kubevirt
    op = Operator(api_client, kube.kubeconfig, group)
    op.vm_namespace = "vms-" + uuid.uuid4().hex[:8]
    op.tenant(namespace, "acme", op.vm_namespace)
    op.create(namespace, "vm10", {}, cores=3, memoryGiB=3, bootDisk={"sizeGiB": 12})
    ok(run_job("create_compute_instance.yml", envelope(op.get(namespace, "vm10"), shape)))
    live = op.get(namespace, "vm10")
    assert live["metadata"]["annotations"][group + "/reconciled-config-version"] == live["status"]["desiredConfigVersion"]
    assert group + "/computeinstance-aap" in live["metadata"]["finalizers"]
    vm = client.CustomObjectsApi(api_client).get_namespaced_custom_object("kubevirt.io", "v1", op.vm_namespace, "virtualmachines", "vm10")
    assert vm["metadata"]["labels"][group + "/computeinstance-uuid"] == live["metadata"]["uid"]
    assert vm["spec"]["template"]["spec"]["domain"]["cpu"]["cores"] == 3
    op.delete(namespace, "vm10")
    ok(run_job("delete_compute_instance.yml", envelope(op.get(namespace, "vm10"), shape)))
    assert op.objects(op.vm_namespace, live["metadata"]["uid"]) == []
    secrets = client.CoreV1Api(api_client).list_namespaced_secret(op.vm_namespace).items
    assert not [s for s in secrets if s.metadata.name.startswith("vm10")]
