"""The seeding CLI: the operator's side by hand, and what is there (molecule's prepare step and some tests use it).

seed: a Tenant with its namespace, and one ComputeInstance whose status carries
what the operator writes (tenant reference, desired config version). envelope:
the extra vars the operator's EDA path delivers. delete / release: delete the
instance, and drop the operator's own finalizer once ours is gone. show /
check-gone: what exists now. `make demo` itself is tests/stack/scenarios.py.
"""

from __future__ import annotations

import argparse
import json
import sys

import kubernetes

GROUP_VERSION = "v1alpha1"
KUBEVIRT_KINDS = (("VirtualMachine", "kubevirt.io", "v1", "virtualmachines"),
                  ("VirtualMachineInstance", "kubevirt.io", "v1", "virtualmachineinstances"),
                  ("DataVolume", "cdi.kubevirt.io", "v1beta1", "datavolumes"))
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
    body = {"apiVersion": api_version, "kind": "ComputeInstance", "spec": spec,
            "metadata": {"name": instance, "namespace": namespace, "finalizers": [group + "/computeinstance"]}}
    live = ensure(custom.create_namespaced_custom_object,
                  lambda: custom.get_namespaced_custom_object(group, GROUP_VERSION, namespace, "computeinstances", instance),
                  group, GROUP_VERSION, namespace, "computeinstances", body)
    status = {
        "phase": "Progressing",
        "tenantReference": {"name": tenant, "namespace": namespace},
        "desiredConfigVersion": desired_config_version(live["spec"]),
    }
    custom.patch_namespaced_custom_object_status(group, GROUP_VERSION, namespace, "computeinstances", instance, {"status": status})


def show(api_client, group, namespace, tenant_namespace):
    """Print the Tenants, the ComputeInstances (contract fields) and the objects in the Tenant's namespace."""
    custom = kubernetes.client.CustomObjectsApi(api_client)
    core = kubernetes.client.CoreV1Api(api_client)
    tenants = custom.list_namespaced_custom_object(group, GROUP_VERSION, namespace, "tenants")["items"]
    instances = custom.list_namespaced_custom_object(group, GROUP_VERSION, namespace, "computeinstances")["items"]
    print("Tenants (%s):" % group)
    for item in tenants:
        print("  %s/%s -> VM namespace %s" % (item["metadata"]["namespace"], item["metadata"]["name"], item.get("status", {}).get("namespace", "-")))
    print("ComputeInstances:%s" % ("" if instances else " none"))
    for item in instances:
        status = item.get("status", {})
        annotations = item["metadata"].get("annotations") or {}
        print("  %s/%s uid=%s" % (item["metadata"]["namespace"], item["metadata"]["name"], item["metadata"]["uid"]))
        print("    template=%s phase=%s deleting=%s" % (item["spec"]["templateID"], status.get("phase", "-"), bool(item["metadata"].get("deletionTimestamp"))))
        reconciled = annotations.get(group + "/reconciled-config-version", "(not yet)")
        print("    desiredConfigVersion=%s reconciled=%s" % (status.get("desiredConfigVersion", "-"), reconciled))
        print("    conditions=%s" % ", ".join("%s=%s" % (c["type"], c["status"]) for c in status.get("conditions") or []))
        print("    finalizers=%s" % (item["metadata"].get("finalizers") or []))
    print("Objects in %s:" % tenant_namespace)
    for kind, lister in (("Secret", core.list_namespaced_secret), ("Service", core.list_namespaced_service)):
        for obj in lister(tenant_namespace).items:
            print("  %s/%s" % (kind, obj.metadata.name))
    for kind, api_group, version, plural in KUBEVIRT_KINDS:
        for obj in custom.list_namespaced_custom_object(api_group, version, tenant_namespace, plural)["items"]:
            state = obj.get("status", {}).get("printableStatus") or obj.get("status", {}).get("phase") or ""
            print("  %s/%s %s" % (kind, obj["metadata"]["name"], state))
    events = [e for e in core.list_namespaced_event(namespace).items if e.involved_object.kind == "ComputeInstance"]
    print("Events on ComputeInstances:")
    for event in events:
        print("  %s %s %s: %s" % (event.type, event.involved_object.name, event.reason, event.message))


def objects_left(api_client, tenant_namespace):
    """Names of the VM objects still in the Tenant's namespace."""
    custom = kubernetes.client.CustomObjectsApi(api_client)
    core = kubernetes.client.CoreV1Api(api_client)
    left = ["Secret/" + s.metadata.name for s in core.list_namespaced_secret(tenant_namespace).items]
    left += ["Service/" + s.metadata.name for s in core.list_namespaced_service(tenant_namespace).items]
    for kind, api_group, version, plural in KUBEVIRT_KINDS:
        left += ["%s/%s" % (kind, o["metadata"]["name"]) for o in custom.list_namespaced_custom_object(api_group, version, tenant_namespace, plural)["items"]]
    return left


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["seed", "show", "envelope", "delete", "release", "check-gone"])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--api-group", default="cloudkit.openshift.io")
    parser.add_argument("--namespace", default="cloudkit-demo", help="namespace of the Tenant and the ComputeInstance")
    parser.add_argument("--tenant", default="acme")
    parser.add_argument("--tenant-namespace", default="tenant-acme", help="where the Tenant's VMs live")
    parser.add_argument("--instance", default="demo-vm")
    args = parser.parse_args(argv)
    api_client = kubernetes.config.new_client_from_config(config_file=args.kubeconfig)
    custom = kubernetes.client.CustomObjectsApi(api_client)
    where = (args.api_group, GROUP_VERSION, args.namespace, "computeinstances", args.instance)
    if args.command == "seed":
        seed(api_client, args.api_group, args.namespace, args.tenant, args.tenant_namespace, args.instance)
    elif args.command == "show":
        show(api_client, args.api_group, args.namespace, args.tenant_namespace)
    elif args.command == "envelope":
        # What the operator POSTs to EDA, as run_job_template passes it on.
        print(json.dumps({"ansible_eda": {"event": {"payload": custom.get_namespaced_custom_object(*where)}}}))
    elif args.command == "delete":
        custom.delete_namespaced_custom_object(*where)
    elif args.command == "release":
        # The operator drops its own finalizer once ours is gone.
        live = custom.get_namespaced_custom_object(*where)
        finalizers = [f for f in live["metadata"].get("finalizers") or [] if f != args.api_group + "/computeinstance"]
        custom.patch_namespaced_custom_object(*where, {"metadata": {"finalizers": finalizers, "resourceVersion": live["metadata"]["resourceVersion"]}})
    else:
        left = objects_left(api_client, args.tenant_namespace)
        gone = not custom.list_namespaced_custom_object(args.api_group, GROUP_VERSION, args.namespace, "computeinstances")["items"]
        print("instance gone: %s; objects left: %s" % (gone, ", ".join(left) or "none"))
        return 0 if gone and not left else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
