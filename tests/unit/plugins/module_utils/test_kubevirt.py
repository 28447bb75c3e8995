"""Unit tests for plugins/module_utils/kubevirt.py: manifests, owned fields, disk changes, storage class, VM state."""

from __future__ import annotations

import base64

from ansible_collections.cloudkit.provisioning.plugins.module_utils.computeinstance import vm_parameters
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kubevirt import (
    build_objects,
    check_disk,
    default_storage_class,
    needs_claim,
    owned_fields,
    vm_state,
    vmi_outdated,
    vmi_ready,
)
from ansible_collections.cloudkit.provisioning.plugins.module_utils.reconcile import ABSENT, diff

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


def test_owned_fields_of_the_vm_cover_what_the_spec_decides_and_nothing_else():
    params = vm_parameters({"templateParameters": '{"ssh_public_key": "%s"}' % KEY})
    vm = by_kind(build_objects("vm1", "ns", LABELS, params))[("VirtualMachine", "vm1")]
    paths = dict((".".join(f.path), f.value) for f in owned_fields(vm))
    assert paths["spec.template.spec.domain.cpu.cores"] == 2
    assert paths["spec.running"] is ABSENT, "legacy running is removed if someone set it: runStrategy is ours"
    assert paths["spec.template.spec.accessCredentials"][0]["sshPublicKey"]["source"]["secret"]["secretName"] == "vm1-ssh-public-key"
    assert not any(p.startswith("status") or p.startswith("spec.template.spec.domain.machine") for p in paths)
    without_key = by_kind(build_objects("vm1", "ns", LABELS, vm_parameters({})))[("VirtualMachine", "vm1")]
    assert dict((".".join(f.path), f.value) for f in owned_fields(without_key))["spec.template.spec.accessCredentials"] is ABSENT


def test_removing_the_key_and_closing_ports_removes_the_fields_and_keeps_foreign_ones():
    with_key = by_kind(build_objects("vm1", "ns", LABELS, vm_parameters({"templateParameters": '{"ssh_public_key": "%s"}' % KEY})))
    live_vm = dict(with_key[("VirtualMachine", "vm1")], status={"ready": True})
    live_vm["spec"]["template"]["spec"]["domain"]["machine"] = {"type": "q35"}  # KubeVirt's default
    live_vm["metadata"] = dict(live_vm["metadata"], labels=dict(live_vm["metadata"]["labels"], other="x"))
    without = by_kind(build_objects("vm1", "ns", LABELS, vm_parameters({"templateParameters": '{"cpu_cores": 1, "exposed_ports": []}'})))
    ops, changes = diff(live_vm, owned_fields(without[("VirtualMachine", "vm1")]))
    assert sorted(c.name for c in changes) == ["spec.template.spec.accessCredentials", "spec.template.spec.domain.cpu.cores"]
    assert {"op": "remove", "path": "/spec/template/spec/accessCredentials"} in ops
    assert not [op for op in ops if op["path"].startswith(("/status", "/metadata/labels/other", "/spec/template/spec/domain/machine"))]
    assert ("Service", "vm1-load-balancer") not in without, "no port: no Service (it is deleted, found by its labels)"


def test_service_ports_ignore_and_keep_the_node_ports():
    service = by_kind(build_objects("vm1", "ns", LABELS, vm_parameters({"templateParameters": '{"exposed_ports": "22/tcp,8080/tcp"}'})))
    desired = service[("Service", "vm1-load-balancer")]
    ports = [dict(p, nodePort=30000 + p["port"] % 1000) for p in desired["spec"]["ports"]]
    live = {"metadata": dict(desired["metadata"]), "spec": dict(desired["spec"], clusterIP="10.0.0.1", ports=ports)}
    assert diff(live, owned_fields(desired)) == ([], []), "node ports are the API server's"
    fewer = by_kind(build_objects("vm1", "ns", LABELS, vm_parameters({"templateParameters": '{"exposed_ports": "22/tcp"}'})))
    ops, _changes = diff(live, owned_fields(fewer[("Service", "vm1-load-balancer")]))
    assert ops[-1] == {"op": "replace", "path": "/spec/ports",
                       "value": [{"name": "tcp-22", "port": 22, "targetPort": 22, "protocol": "TCP", "nodePort": 30022}]}


DISK_FIELDS = {"source": "spec.templateParameters.image", "size": "spec.templateParameters.disk_size"}
ANNOTATION = "cloudkit.openshift.io/requested-storage"
EXPANDABLE = [{"metadata": {"name": "standard"}, "allowVolumeExpansion": True}]
FIXED = [{"metadata": {"name": "standard"}}]


def disk(parameters, storage_class="standard"):
    return by_kind(build_objects("vm1", "ns", LABELS, vm_parameters({"templateParameters": parameters}), storage_class))[("DataVolume", "vm1-root-disk")]


def claim(size):
    return {"metadata": {"name": "vm1-root-disk"}, "spec": {"storageClassName": "standard", "resources": {"requests": {"storage": size}}}}


def test_a_new_image_or_a_smaller_disk_is_refused_naming_the_field():
    live = dict(disk('{"disk_size": "20Gi"}'), metadata={"name": "vm1-root-disk", "namespace": "ns"})
    plan = check_disk(disk('{"disk_size": "20Gi", "image": "quay.io/containerdisks/centos:9"}'), live, None, None, EXPANDABLE, DISK_FIELDS, ANNOTATION)
    assert [r["field"] for r in plan.refused] == ["spec.templateParameters.image"]
    assert "quay.io/containerdisks/fedora:40" in plan.refused[0]["reason"] and "centos:9" in plan.refused[0]["reason"]
    plan = check_disk(disk('{"disk_size": "10Gi"}'), live, None, None, EXPANDABLE, DISK_FIELDS, ANNOTATION)
    assert [r["field"] for r in plan.refused] == ["spec.templateParameters.disk_size"] and "cannot shrink" in plan.refused[0]["reason"]


def test_a_larger_disk_grows_its_claim_only_where_the_class_allows_expansion():
    live = dict(disk("{}"), metadata={"name": "vm1-root-disk", "namespace": "ns"})
    bigger = disk('{"disk_size": "12Gi"}')
    assert needs_claim(bigger, live, ANNOTATION)
    plan = check_disk(bigger, live, claim("10Gi"), None, EXPANDABLE, DISK_FIELDS, ANNOTATION)
    assert not plan.refused and plan.claim_size == "12Gi" and plan.requested == "12Gi"
    plan = check_disk(bigger, live, claim("10Gi"), None, FIXED, DISK_FIELDS, ANNOTATION)
    assert "does not allow volume expansion" in plan.refused[0]["reason"] and plan.claim_size is None
    grown = dict(live, metadata=dict(live["metadata"], annotations={ANNOTATION: "12Gi"}))
    plan = check_disk(bigger, grown, claim("12Gi"), None, FIXED, DISK_FIELDS, ANNOTATION)
    assert not plan.refused and plan.claim_size is None and plan.requested == "12Gi", "grown already: nothing to do, even on a fixed class"
    plan = check_disk(disk("{}"), grown, claim("12Gi"), None, EXPANDABLE, DISK_FIELDS, ANNOTATION)
    assert plan.refused and "cannot shrink" in plan.refused[0]["reason"], "back to the first size is a shrink too"
    plan = check_disk(bigger, live, None, None, EXPANDABLE, DISK_FIELDS, ANNOTATION)
    assert not plan.refused and plan.problems and "does not exist yet" in plan.problems[0]


def test_another_storage_class_is_refused_and_the_default_keeps_the_disk_s_own():
    live = dict(disk("{}"), metadata={"name": "vm1-root-disk", "namespace": "ns"})
    plan = check_disk(disk("{}", "fast"), live, None, "fast", EXPANDABLE, DISK_FIELDS, ANNOTATION)
    assert [r["field"] for r in plan.refused] == ["storage_class"]
    assert not check_disk(disk("{}", "new-default"), live, None, None, EXPANDABLE, DISK_FIELDS, ANNOTATION).refused


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


BOOT = "cloudkit.openshift.io/boot-inputs"


def test_the_template_carries_a_hash_of_the_boot_secrets():
    def vm_of(parameters):
        objects = by_kind(build_objects("vm1", "ns", LABELS, vm_parameters({"templateParameters": parameters}), boot_inputs_annotation=BOOT))
        return objects[("VirtualMachine", "vm1")]["spec"]["template"]["metadata"]["annotations"][BOOT]
    assert vm_of("{}") == vm_of("{}") and len(vm_of("{}")) == 16
    assert vm_of('{"ssh_public_key": "%s"}' % KEY) != vm_of("{}"), "a key changes the boot Secrets"
    assert vm_of('{"cloud_init": "#cloud-config\\n"}') != vm_of("{}")
    assert vm_of('{"cpu_cores": 4}') == vm_of("{}"), "cores are not in the Secrets"


def test_a_vmi_is_outdated_when_it_lacks_a_template_field():
    params = vm_parameters({"templateParameters": '{"ssh_public_key": "%s", "cpu_cores": 4}' % KEY})
    vm = by_kind(build_objects("vm1", "ns", LABELS, params, boot_inputs_annotation=BOOT))[("VirtualMachine", "vm1")]
    vmi = {"metadata": {"annotations": dict(vm["spec"]["template"]["metadata"]["annotations"])},
           "spec": dict(vm["spec"]["template"]["spec"], domain=dict(vm["spec"]["template"]["spec"]["domain"], machine={"type": "q35"}))}
    assert vmi_outdated(vmi, vm, (BOOT,)) == [], "defaults KubeVirt adds are not differences"
    old = dict(vmi, spec=dict(vmi["spec"], domain=dict(vmi["spec"]["domain"], cpu={"cores": 2})))
    assert vmi_outdated(old, vm, (BOOT,)) == ["spec.template.spec.domain.cpu.cores"]
    without_key = by_kind(build_objects("vm1", "ns", LABELS, vm_parameters({"templateParameters": '{"cpu_cores": 4}'}),
                                        boot_inputs_annotation=BOOT))[("VirtualMachine", "vm1")]
    assert vmi_outdated(vmi, without_key, (BOOT,)) == ["spec.template.spec.accessCredentials",
                                                       'spec.template.metadata.annotations["cloudkit.openshift.io/boot-inputs"]']
    unannotated = dict(old, metadata={})
    assert vmi_outdated(unannotated, vm, (BOOT,)) == ["spec.template.spec.domain.cpu.cores"], "a VMI from before the annotation is judged by its spec"
