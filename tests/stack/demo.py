"""Seed the local stack the way the cloudkit operator would, and show what is there.

Used by `make demo`: a Tenant with its namespace, and one ComputeInstance whose
status carries what the operator writes (tenant reference, desired config version).
"""

from __future__ import annotations

import argparse
import json
import sys

import kubernetes

GROUP_VERSION = "v1alpha1"
FNV64_OFFSET = 0xCBF29CE484222325
FNV64_PRIME = 0x100000001B3


def fnv64a_hex(data):
    """FNV-1a 64-bit hash in hex, as the operator computes desiredConfigVersion."""
    value = FNV64_OFFSET
    for byte in data:
        value ^= byte
        value = (value * FNV64_PRIME) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % value


def desired_config_version(spec):
    """The operator hashes the JSON of spec; Go's encoder writes it compactly."""
    return fnv64a_hex(json.dumps(spec, separators=(",", ":")).encode("utf-8"))


def ensure(create, read, *args):
    """Create unless it exists; return the live object."""
    try:
        create(*args)
    except kubernetes.client.ApiException as exc:
        if exc.status != 409:
            raise
    return read()


def seed(api_client, group, namespace, tenant, tenant_namespace, instance):
    """Create the Tenant, its namespace and one ComputeInstance, with operator-written status."""
    core = kubernetes.client.CoreV1Api(api_client)
    custom = kubernetes.client.CustomObjectsApi(api_client)
    for name in (namespace, tenant_namespace):
        ensure(core.create_namespace, lambda n=name: core.read_namespace(n), {"metadata": {"name": name}})
    api_version = "%s/%s" % (group, GROUP_VERSION)
    tenant_body = {"apiVersion": api_version, "kind": "Tenant", "metadata": {"name": tenant, "namespace": namespace}, "spec": {}}
    ensure(custom.create_namespaced_custom_object, lambda: custom.get_namespaced_custom_object(group, GROUP_VERSION, namespace, "tenants", tenant),
           group, GROUP_VERSION, namespace, "tenants", tenant_body)
    custom.patch_namespaced_custom_object_status(group, GROUP_VERSION, namespace, "tenants", tenant, {"status": {"namespace": tenant_namespace}})
    spec = {
        "templateID": "cloudkit.templates.ocp_virt_vm",
        "templateParameters": json.dumps({"cpu_cores": 2, "memory": "2Gi", "disk_size": "10Gi", "image": "quay.io/containerdisks/fedora:40",
                                          "exposed_ports": "22/tcp"}),
    }
    body = {"apiVersion": api_version, "kind": "ComputeInstance", "metadata": {"name": instance, "namespace": namespace}, "spec": spec}
    live = ensure(custom.create_namespaced_custom_object,
                  lambda: custom.get_namespaced_custom_object(group, GROUP_VERSION, namespace, "computeinstances", instance),
                  group, GROUP_VERSION, namespace, "computeinstances", body)
    status = {
        "phase": "Progressing",
        "tenantReference": {"name": tenant, "namespace": namespace},
        "desiredConfigVersion": desired_config_version(live["spec"]),
    }
    custom.patch_namespaced_custom_object_status(group, GROUP_VERSION, namespace, "computeinstances", instance, {"status": status})


def show(api_client, group):
    """Print every Tenant and ComputeInstance with the fields the contract cares about."""
    custom = kubernetes.client.CustomObjectsApi(api_client)
    tenants = custom.list_cluster_custom_object(group, GROUP_VERSION, "tenants")["items"]
    instances = custom.list_cluster_custom_object(group, GROUP_VERSION, "computeinstances")["items"]
    print("Tenants (%s):" % group)
    for item in tenants:
        print("  %s/%s -> VM namespace %s" % (item["metadata"]["namespace"], item["metadata"]["name"], item.get("status", {}).get("namespace", "-")))
    print("ComputeInstances:")
    for item in instances:
        status = item.get("status", {})
        annotations = item["metadata"].get("annotations") or {}
        print("  %s/%s uid=%s" % (item["metadata"]["namespace"], item["metadata"]["name"], item["metadata"]["uid"]))
        print("    template=%s phase=%s" % (item["spec"]["templateID"], status.get("phase", "-")))
        reconciled = annotations.get(group + "/reconciled-config-version", "(not yet)")
        print("    desiredConfigVersion=%s reconciled=%s" % (status.get("desiredConfigVersion", "-"), reconciled))
        print("    finalizers=%s" % (item["metadata"].get("finalizers") or []))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["seed", "show"])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--api-group", default="cloudkit.openshift.io")
    parser.add_argument("--namespace", default="cloudkit-demo", help="namespace of the Tenant and the ComputeInstance")
    parser.add_argument("--tenant", default="acme")
    parser.add_argument("--tenant-namespace", default="tenant-acme", help="where the Tenant's VMs live")
    parser.add_argument("--instance", default="demo-vm")
    args = parser.parse_args(argv)
    api_client = kubernetes.config.new_client_from_config(config_file=args.kubeconfig)
    if args.command == "seed":
        seed(api_client, args.api_group, args.namespace, args.tenant, args.tenant_namespace, args.instance)
    else:
        show(api_client, args.api_group)
    return 0


if __name__ == "__main__":
    sys.exit(main())
