"""Unit tests for plugins/module_utils/kubevirt.py: manifests, drift, storage class, VM state."""

from __future__ import annotations

import base64

from ansible_collections.cloudkit.provisioning.plugins.module_utils.computeinstance import vm_parameters
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kubevirt import (
    build_objects,
    contains,
    default_storage_class,
    drift,
    update_patch,
    vm_state,
    vmi_ready,
)

LABELS = {"cloudkit.openshift.io/computeinstance": "vm1", "cloudkit.openshift.io/computeinstance-uuid": "u-1"}
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f me@host"


def by_kind(objects):
    return dict(((manifest["kind"], manifest["metadata"]["name"]), manifest) for _resource, manifest in objects)


def test_defaults_make_the_contract_objects():
    objects = build_objects("vm1", "tenant-acme", LABELS, vm_parameters({}), storage_class="standard")
    manifests = by_kind(objects)
    assert sorted(manifests) == [("DataVolume", "vm1-root-disk"), ("Secret", "vm1-cloud-init"), ("Service", "vm1-load-balancer"),
                                 ("VirtualMachine", "vm1")]
    assert [m["kind"] for _r, m in objects][-2:] == ["VirtualMachine", "Service"], "disks and secrets come before the VM"
    for manifest in manifests.values():
        assert manifest["metadata"]["labels"] == LABELS and manifest["metadata"]["namespace"] == "tenant-acme"
    disk = manifests[("DataVolume", "vm1-root-disk")]["spec"]
    assert disk == {"source": {"registry": {"url": "docker://quay.io/containerdisks/fedora:40"}},
                    "storage": {"resources": {"requests": {"storage": "10Gi"}}, "storageClassName": "standard"}}
    vm = manifests[("VirtualMachine", "vm1")]["spec"]
    assert vm["runStrategy"] == "Always"
    domain = vm["template"]["spec"]["domain"]
    assert domain["cpu"] == {"cores": 2} and domain["memory"] == {"guest": "2Gi"}
    assert domain["devices"]["interfaces"] == [{"name": "default", "masquerade": {}}]
    assert vm["template"]["spec"]["networks"] == [{"name": "default", "pod": {}}]
    volumes = dict((v["name"], v) for v in vm["template"]["spec"]["volumes"])
    assert volumes["rootdisk"]["dataVolume"] == {"name": "vm1-root-disk"}
    assert volumes["cloudinitdisk"]["cloudInitNoCloud"] == {"secretRef": {"name": "vm1-cloud-init"}}
    user_data = base64.b64decode(manifests[("Secret", "vm1-cloud-init")]["data"]["userData"]).decode()
    assert user_data.startswith("#cloud-config\n")
    service = manifests[("Service", "vm1-load-balancer")]["spec"]
    assert service["type"] == "LoadBalancer" and service["ports"] == [{"name": "tcp-22", "port": 22, "targetPort": 22, "protocol": "TCP"}]
    assert service["selector"] == {"kubevirt.io/domain": "vm1"}
    assert vm["template"]["metadata"]["labels"]["kubevirt.io/domain"] == "vm1"


def test_ssh_key_extra_disks_and_user_data_secret():
    params = vm_parameters({"sshKey": KEY, "additionalDisks": [{"sizeGiB": 5}], "userDataSecretRef": {"name": "mine"}, "runStrategy": "Halted"})
    params["exposed_ports"] = []
    manifests = by_kind(build_objects("vm1", "ns", LABELS, params))
    assert ("Secret", "vm1-cloud-init") not in manifests and ("Service", "vm1-load-balancer") not in manifests
    assert base64.b64decode(manifests[("Secret", "vm1-ssh-public-key")]["data"]["key"]).decode() == KEY
    assert manifests[("DataVolume", "vm1-disk-1")]["spec"]["source"] == {"blank": {}}
    assert "storageClassName" not in manifests[("DataVolume", "vm1-root-disk")]["spec"]["storage"]
    vm = manifests[("VirtualMachine", "vm1")]["spec"]
    assert vm["runStrategy"] == "Halted"
    volumes = dict((v["name"], v) for v in vm["template"]["spec"]["volumes"])
    assert volumes["disk1"]["dataVolume"] == {"name": "vm1-disk-1"}
    assert volumes["cloudinitdisk"]["cloudInitNoCloud"]["secretRef"]["name"] == "mine"
    credentials = vm["template"]["spec"]["accessCredentials"][0]["sshPublicKey"]
    assert credentials["source"]["secret"]["secretName"] == "vm1-ssh-public-key"


def test_user_cloud_init_is_used_verbatim():
    params = vm_parameters({"templateParameters": '{"cloud_init": "#cloud-config\\nruncmd: [true]\\n"}'})
    secret = by_kind(build_objects("vm1", "ns", LABELS, params))[("Secret", "vm1-cloud-init")]
    assert base64.b64decode(secret["data"]["userData"]).decode() == "#cloud-config\nruncmd: [true]\n"


def test_contains_ignores_what_the_api_adds():
    desired = {"spec": {"ports": [{"port": 22}], "type": "LoadBalancer"}}
    live = {"spec": {"ports": [{"port": 22, "nodePort": 30022}], "type": "LoadBalancer", "clusterIP": "10.0.0.1"}, "status": {}}
    assert contains(live, desired)
    assert not contains({"spec": {"ports": [{"port": 22}, {"port": 80}], "type": "LoadBalancer"}}, desired)
    assert not contains({"spec": {"ports": [{"port": 23}], "type": "LoadBalancer"}}, desired)
    assert not contains(None, desired)


def test_drift_separates_immutable_fields():
    vm = {"kind": "VirtualMachine", "metadata": {"labels": {"a": "b"}}, "spec": {"runStrategy": "Always"}}
    assert drift(vm, vm) == ([], [])
    changed = dict(vm, spec={"runStrategy": "Halted"})
    assert drift(vm, changed) == (["spec"], [])
    assert update_patch(changed, ["spec", "metadata"]) == {"spec": {"runStrategy": "Halted"}, "metadata": {"labels": {"a": "b"}}}
    disk = {"kind": "DataVolume", "metadata": {"labels": {}}, "spec": {"storage": {"resources": {"requests": {"storage": "10Gi"}}}}}
    bigger = dict(disk, spec={"storage": {"resources": {"requests": {"storage": "20Gi"}}}})
    assert drift(disk, bigger) == ([], ["spec"])


def test_default_storage_class():
    classes = [{"metadata": {"name": "slow"}},
               {"metadata": {"name": "fast", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}},
               {"metadata": {"name": "old", "annotations": {"storageclass.beta.kubernetes.io/is-default-class": "false"}}}]
    assert default_storage_class(classes) == "fast"
    assert default_storage_class(classes[:1]) is None


def test_vm_state():
    ready = {"status": {"printableStatus": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    assert vm_state(ready) == (True, "Running", "")
    failing = {"status": {"printableStatus": "ErrImagePull", "conditions": [{"type": "Ready", "status": "False", "reason": "PodNotReady"}]}}
    assert vm_state(failing) == (False, "ErrImagePull", "PodNotReady")
    assert vm_state(None) == (False, "Unknown", "")


def test_vmi_ready_needs_running_and_the_ready_condition():
    running = {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    assert vmi_ready(running)
    assert not vmi_ready({"status": {"phase": "Scheduling", "conditions": [{"type": "Ready", "status": "True"}]}})
    assert not vmi_ready({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}})
    assert not vmi_ready({"status": {"phase": "Running"}})
    assert not vmi_ready(None)
