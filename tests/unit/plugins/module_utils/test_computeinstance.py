"""Unit tests for plugins/module_utils/computeinstance.py: actions, parameters, templates, namespaces."""

from __future__ import annotations

import json

import pytest

from ansible_collections.cloudkit.provisioning.plugins.module_utils import kube_errors, kube_resources
from ansible_collections.cloudkit.provisioning.plugins.module_utils.computeinstance import (
    DEFAULT_ALLOWED_TEMPLATES,
    ComputeInstance,
    ParameterError,
    check_template,
    parse_ports,
    quantity_bytes,
    resolve_target_namespace,
    vm_parameters,
)
from ansible_collections.cloudkit.provisioning.plugins.module_utils.names import Names

NAMES = Names()


def instance(desired="v2", reconciled=None, deleting=False, finalizers=None, management=None, status=None):
    annotations = {}
    if reconciled:
        annotations[NAMES.reconciled_config_version_annotation] = reconciled
    if management:
        annotations[NAMES.management_state_annotation] = management
    metadata = {"name": "vm1", "namespace": "tenants", "uid": "u-1", "generation": 3, "resourceVersion": "9", "annotations": annotations}
    if finalizers is not None:
        metadata["finalizers"] = finalizers
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    body_status = dict(status or {})
    if desired:
        body_status["desiredConfigVersion"] = desired
    return ComputeInstance({"metadata": metadata, "spec": {"templateID": "cloudkit.templates.ocp_virt_vm"}, "status": body_status}, NAMES)


@pytest.mark.parametrize(
    "kwargs, action, reason",
    [
        ({}, "provision", "desired config version v2, reconciled none"),
        ({"reconciled": "v1"}, "provision", "reconciled v1"),
        ({"reconciled": "v2"}, "none", "reconciled at config version v2"),
        ({"desired": None}, "none", "desiredConfigVersion is not set yet"),
        ({"deleting": True, "finalizers": [NAMES.finalizer]}, "deprovision", "being deleted"),
        ({"deleting": True, "finalizers": [NAMES.operator_finalizer]}, "none", "already gone"),
        ({"management": "manual"}, "none", "management-state is manual"),
        ({"management": "Unmanaged", "deleting": True, "finalizers": [NAMES.finalizer]}, "none", "hands off"),
    ],
)
def test_needed_action(kwargs, action, reason):
    got_action, got_reason = instance(**kwargs).needed_action()
    assert got_action == action
    assert reason in got_reason


def test_facts_carry_versions_and_names():
    facts = instance(reconciled="v1", finalizers=[NAMES.finalizer]).facts()
    assert facts["desired_config_version"] == "v2"
    assert facts["reconciled_config_version"] == "v1"
    assert facts["finalizer_present"] is True
    assert facts["managed"] is True
    assert facts["names"]["finalizer"] == NAMES.finalizer
    assert facts["generation"] == 3 and facts["resource_version"] == "9"


def test_seed_defaults_match_upstream():
    params = vm_parameters({"templateID": "x"})
    assert params == {
        "cores": 2, "memory": "2Gi", "disk_size": "10Gi", "image": "quay.io/containerdisks/fedora:40",
        "ssh_public_key": None, "cloud_init": None, "user_data_secret_ref": None,
        "exposed_ports": [{"port": 22, "protocol": "TCP"}], "run_strategy": "Always", "additional_disks": [],
    }


def test_seed_parameters_are_parsed():
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f user@host"
    spec = {"templateParameters": json.dumps({"cpu_cores": "4", "memory": "4Gi", "disk_size": "20Gi", "image": "docker://quay.io/x/y:1",
                                              "ssh_public_key": key, "cloud_init": "#cloud-config\n", "exposed_ports": "22/tcp,8080/udp,22"})}
    params = vm_parameters(spec)
    assert params["cores"] == 4
    assert params["image"] == "quay.io/x/y:1"
    assert params["ssh_public_key"] == key
    assert params["cloud_init"] == "#cloud-config\n"
    assert params["exposed_ports"] == [{"port": 22, "protocol": "TCP"}, {"port": 8080, "protocol": "UDP"}]


def test_typed_fields_win_over_template_parameters():
    spec = {"templateParameters": json.dumps({"cpu_cores": 2, "memory": "2Gi"}), "cores": 6, "memoryGiB": 12, "bootDisk": {"sizeGiB": 40},
            "image": {"sourceRef": "quay.io/containerdisks/centos-stream:9"}, "runStrategy": "Halted", "sshKey": "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAABQDDESIz",
            "userDataSecretRef": {"name": "ud"}, "additionalDisks": [{"sizeGiB": 5}, {"sizeGiB": 7}]}
    params = vm_parameters(spec)
    assert (params["cores"], params["memory"], params["disk_size"], params["run_strategy"]) == (6, "12Gi", "40Gi", "Halted")
    assert params["image"] == "quay.io/containerdisks/centos-stream:9"
    assert params["user_data_secret_ref"] == {"name": "ud"}
    assert params["additional_disks"] == [{"size": "5Gi"}, {"size": "7Gi"}]


@pytest.mark.parametrize(
    "spec, field",
    [
        ({"templateParameters": "{oops"}, "spec.templateParameters is not valid JSON"),
        ({"templateParameters": "[1]"}, "spec.templateParameters must encode a JSON object"),
        ({"templateParameters": json.dumps({"gpu": 1})}, "unknown parameter(s) gpu"),
        ({"templateParameters": json.dumps({"cpu_cores": 0})}, "spec.templateParameters.cpu_cores"),
        ({"templateParameters": json.dumps({"cpu_cores": True})}, "spec.templateParameters.cpu_cores"),
        ({"cores": 1000}, "spec.cores"),
        ({"templateParameters": json.dumps({"memory": "4GB"})}, "spec.templateParameters.memory"),
        ({"templateParameters": json.dumps({"memory": "1Mi"})}, "spec.templateParameters.memory must be between 64Mi and 4Ti"),
        ({"memoryGiB": "lots"}, "spec.memoryGiB"),
        ({"templateParameters": json.dumps({"disk_size": "100Mi"})}, "spec.templateParameters.disk_size"),
        ({"bootDisk": {"sizeGiB": -1}}, "spec.bootDisk.sizeGiB"),
        ({"templateParameters": json.dumps({"image": "Not An Image"})}, "spec.templateParameters.image"),
        ({"image": {"sourceRef": 7}}, "spec.image.sourceRef"),
        ({"templateParameters": json.dumps({"ssh_public_key": "hello"})}, "spec.templateParameters.ssh_public_key"),
        ({"templateParameters": json.dumps({"cloud_init": 5})}, "spec.templateParameters.cloud_init must be a string"),
        ({"templateParameters": json.dumps({"exposed_ports": "22/icmp"})}, "spec.templateParameters.exposed_ports"),
        ({"templateParameters": json.dumps({"exposed_ports": "0/tcp"})}, "spec.templateParameters.exposed_ports"),
        ({"templateParameters": json.dumps({"exposed_ports": 22})}, "spec.templateParameters.exposed_ports must be a comma-separated"),
        ({"runStrategy": "Sometimes"}, "spec.runStrategy"),
        ({"userDataSecretRef": {}}, "spec.userDataSecretRef.name"),
        ({"userDataSecretRef": {"name": "u"}, "templateParameters": json.dumps({"cloud_init": "x"})}, "both set"),
        ({"additionalDisks": {"sizeGiB": 1}}, "spec.additionalDisks must be a list"),
        ({"additionalDisks": [{"sizeGiB": 0}]}, "spec.additionalDisks[0].sizeGiB"),
    ],
)
def test_bad_parameters_name_the_field(spec, field):
    with pytest.raises(ParameterError) as caught:
        vm_parameters(spec)
    assert field in str(caught.value)


def test_all_problems_are_reported_together():
    with pytest.raises(ParameterError) as caught:
        vm_parameters({"templateParameters": json.dumps({"cpu_cores": -1, "memory": "x", "image": "!"})})
    assert len(caught.value.problems) == 3


def test_spec_must_be_a_mapping():
    with pytest.raises(ParameterError, match="spec must be a mapping"):
        vm_parameters(None)


def test_quantities_and_ports():
    assert quantity_bytes("1Gi") == 2 ** 30
    assert quantity_bytes("1.5G") == 1500000000
    assert quantity_bytes("512") == 512
    assert quantity_bytes("1 Gi") is None and quantity_bytes(5) is None
    assert parse_ports("", "f") == [] and parse_ports(None, "f") == []
    assert parse_ports(["80/TCP", "53/udp"], "f") == [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]


def test_template_allow_list():
    assert check_template("cloudkit.templates.ocp_virt_vm") == "cloudkit.templates.ocp_virt_vm"
    assert "cloudkit.templates.ocp_virt_vm" in DEFAULT_ALLOWED_TEMPLATES
    with pytest.raises(ParameterError, match="not an allowed template"):
        check_template("some.other.role")
    with pytest.raises(ParameterError, match="must match"):
        check_template("1bad")
    with pytest.raises(ParameterError, match=r"\(none\)"):
        check_template("a.b", allowed_templates=[])


class NamespaceClient:
    """Answers the Tenant GET and the labelled VM LIST that namespace resolution makes."""

    def __init__(self, tenant=None, labelled=()):
        self.tenant = tenant
        self.labelled = list(labelled)
        self.selectors = []

    def get(self, resource, name, namespace=None):
        if self.tenant is None:
            raise kube_errors.NotFound("not found", status=404)
        return self.tenant

    def list(self, resource, namespace=None, label_selector=None, **_kwargs):
        self.selectors.append(label_selector)
        return {"items": self.labelled}


TENANT, VM = kube_resources.contract_resources(NAMES)[1], kube_resources.STATIC_RESOURCES[("kubevirt.io/v1", "VirtualMachine")]
WITH_TENANT = {"tenantReference": {"name": "acme", "namespace": "tenants"}}


def test_namespace_from_the_tenant():
    client = NamespaceClient(tenant={"status": {"namespace": "tenant-acme"}})
    assert resolve_target_namespace(client, instance(status=WITH_TENANT), TENANT, VM, False) == ("tenant-acme", "tenant", None)


@pytest.mark.parametrize(
    "status, tenant, problem",
    [
        ({}, None, "status.tenantReference is not set"),
        (WITH_TENANT, None, "Tenant tenants/acme (status.tenantReference) does not exist"),
        (WITH_TENANT, {"status": {}}, "has no status.namespace yet"),
    ],
)
def test_create_paths_need_the_tenant(status, tenant, problem):
    namespace, source, got = resolve_target_namespace(NamespaceClient(tenant=tenant), instance(status=status), TENANT, VM, False)
    assert (namespace, source) == (None, None)
    assert problem in got


def test_delete_paths_fall_back_to_the_vm_reference_then_labels():
    reference = dict(WITH_TENANT, virtualMachineReference={"namespace": "tenant-acme", "kubeVirtVirtualMachineName": "vm1"})
    namespace, source, problem = resolve_target_namespace(NamespaceClient(), instance(status=reference), TENANT, VM, True)
    assert (namespace, source) == ("tenant-acme", "virtualMachineReference") and "does not exist" in problem
    client = NamespaceClient(labelled=[{"metadata": {"namespace": "found-by-label"}}])
    assert resolve_target_namespace(client, instance(status=WITH_TENANT), TENANT, VM, True)[:2] == ("found-by-label", "labels")
    assert client.selectors == [NAMES.instance_label_selector("u-1")]
    assert resolve_target_namespace(NamespaceClient(), instance(status={}), TENANT, VM, True)[:2] == (None, None)
