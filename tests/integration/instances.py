"""The operator's side of a ComputeInstance, as far as the integration tests need it.

Creates Tenants and instances and keeps status.desiredConfigVersion and
status.tenantReference as the operator does (tests/stack/operator plays the
whole operator later).
"""

from __future__ import annotations

import json

from kubernetes import client

from ansible_collections.cloudkit.provisioning.plugins.module_utils import kube, kube_resources
from ansible_collections.cloudkit.provisioning.plugins.module_utils.metadata import set_finalizer
from ansible_collections.cloudkit.provisioning.plugins.module_utils.names import Names
from tests.stack.seed import desired_config_version

VERSION = "v1alpha1"


def envelope(obj, shape="eda"):
    """The extra vars that deliver `obj`: eda (ansible_eda.event.payload), osac (osac_job_vars.resource) or hand (compute_instance)."""
    return {"eda": {"ansible_eda": {"event": {"payload": obj}}}, "osac": {"osac_job_vars": {"resource": obj}},
            "hand": {"compute_instance": obj}}[shape]


class Operator:
    """Writes what the operator writes, for one API group."""

    def __init__(self, api_client, kubeconfig, group="cloudkit.openshift.io"):
        self.group = group
        self.kube = kube.KubeClient.from_options({"kubeconfig": kubeconfig})
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)

    def ensure_namespace(self, name):
        try:
            self.core.create_namespace({"metadata": {"name": name}})
        except client.ApiException as exc:
            if exc.status != 409:
                raise

    def tenant(self, namespace, name, vm_namespace):
        self.ensure_namespace(vm_namespace)
        body = {"apiVersion": "%s/%s" % (self.group, VERSION), "kind": "Tenant", "metadata": {"name": name}, "spec": {}}
        self.custom.create_namespaced_custom_object(self.group, VERSION, namespace, "tenants", body)
        self.custom.patch_namespaced_custom_object_status(self.group, VERSION, namespace, "tenants", name, {"status": {"namespace": vm_namespace}})

    def delete_tenant(self, namespace, name):
        self.custom.delete_namespaced_custom_object(self.group, VERSION, namespace, "tenants", name)

    def create(self, namespace, name, parameters=None, tenant="acme", annotations=None, **spec_fields):
        spec = {"templateID": spec_fields.pop("templateID", "cloudkit.templates.ocp_virt_vm")}
        if parameters is not None:
            spec["templateParameters"] = json.dumps(parameters)
        spec.update(spec_fields)
        body = {"apiVersion": "%s/%s" % (self.group, VERSION), "kind": "ComputeInstance",
                "metadata": {"name": name, "annotations": annotations or {}, "finalizers": [self.group + "/computeinstance"]}, "spec": spec}
        created = self.custom.create_namespaced_custom_object(self.group, VERSION, namespace, "computeinstances", body)
        status = {"phase": "Progressing", "tenantReference": {"name": tenant, "namespace": namespace},
                  "desiredConfigVersion": desired_config_version(created["spec"])}
        return self.custom.patch_namespaced_custom_object_status(self.group, VERSION, namespace, "computeinstances", name, {"status": status})

    def get(self, namespace, name):
        try:
            return self.custom.get_namespaced_custom_object(self.group, VERSION, namespace, "computeinstances", name)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def change_spec(self, namespace, name, **changes):
        """Patch spec, then recompute desiredConfigVersion as the operator does on its next reconcile."""
        if "parameters" in changes:
            changes["templateParameters"] = json.dumps(changes.pop("parameters"))
        updated = self.custom.patch_namespaced_custom_object(self.group, VERSION, namespace, "computeinstances", name, {"spec": changes})
        status = {"desiredConfigVersion": desired_config_version(updated["spec"])}
        return self.custom.patch_namespaced_custom_object_status(self.group, VERSION, namespace, "computeinstances", name, {"status": status})

    def delete(self, namespace, name):
        """Delete it (the finalizers hold it until both sides are done)."""
        self.custom.delete_namespaced_custom_object(self.group, VERSION, namespace, "computeinstances", name)

    def release(self, namespace, name):
        """Remove the operator's own finalizer, as it does once the Ansible side is done."""
        resource = kube_resources.contract_resources(Names(self.group))[0]
        set_finalizer(self.kube, resource, name, namespace, self.group + "/computeinstance", present=False)

    def leftovers(self, *namespaces):
        """Every VirtualMachine, VMI, DataVolume, Lease, Secret and Service in these namespaces, labelled or not, as 'Kind namespace/name'."""
        found = []
        for namespace in namespaces:
            for kind, lister in (("Secret", self.core.list_namespaced_secret), ("Service", self.core.list_namespaced_service)):
                found += ["%s %s/%s" % (kind, namespace, o.metadata.name) for o in lister(namespace).items]
            for kind, group, version, plural in (("VirtualMachine", "kubevirt.io", "v1", "virtualmachines"),
                                                 ("VirtualMachineInstance", "kubevirt.io", "v1", "virtualmachineinstances"),
                                                 ("DataVolume", "cdi.kubevirt.io", "v1beta1", "datavolumes"),
                                                 ("Lease", "coordination.k8s.io", "v1", "leases")):
                items = self.custom.list_namespaced_custom_object(group, version, namespace, plural)["items"]
                found += ["%s %s/%s" % (kind, namespace, o["metadata"]["name"]) for o in items]
        return sorted(found)

    def objects(self, namespace, uid):
        """Every object labelled for the instance uid, as 'Kind/name'."""
        selector = "%s/computeinstance-uuid=%s" % (self.group, uid)
        found = []
        for kind, lister in (("Secret", self.core.list_namespaced_secret), ("Service", self.core.list_namespaced_service)):
            found += ["%s/%s" % (kind, o.metadata.name) for o in lister(namespace, label_selector=selector).items]
        for kind, group, version, plural in (("VirtualMachine", "kubevirt.io", "v1", "virtualmachines"),
                                             ("VirtualMachineInstance", "kubevirt.io", "v1", "virtualmachineinstances"),
                                             ("DataVolume", "cdi.kubevirt.io", "v1beta1", "datavolumes")):
            items = self.custom.list_namespaced_custom_object(group, version, namespace, plural, label_selector=selector)["items"]
            found += ["%s/%s" % (kind, o["metadata"]["name"]) for o in items]
        return sorted(found)
