# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The KubeVirt objects of one ComputeInstance (CONTRACT section 5), as manifests.

Pure functions: validated VM parameters in, manifests out. Every object carries
the instance labels, so a delete can find everything even without the Tenant.
"""

from __future__ import annotations

import base64

from ansible.module_utils.common.yaml import yaml_dump

from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube import STATIC_RESOURCES

SECRET = STATIC_RESOURCES[("v1", "Secret")]
SERVICE = STATIC_RESOURCES[("v1", "Service")]
DATA_VOLUME = STATIC_RESOURCES[("cdi.kubevirt.io/v1beta1", "DataVolume")]
VIRTUAL_MACHINE = STATIC_RESOURCES[("kubevirt.io/v1", "VirtualMachine")]
VIRTUAL_MACHINE_INSTANCE = STATIC_RESOURCES[("kubevirt.io/v1", "VirtualMachineInstance")]
STORAGE_CLASS = STATIC_RESOURCES[("storage.k8s.io/v1", "StorageClass")]

# Deletion order of CONTRACT section 5 (after the VM is stopped and its VMI gone).
DELETE_ORDER = (VIRTUAL_MACHINE, SERVICE, DATA_VOLUME, SECRET)

DEFAULT_STORAGE_CLASS_ANNOTATIONS = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)


def default_storage_class(storage_classes):
    """Name of the cluster's default StorageClass, None when there is none (CDI then uses its own default)."""
    defaults = sorted(
        sc["metadata"]["name"]
        for sc in storage_classes
        if any(((sc["metadata"].get("annotations") or {}).get(key) or "").lower() == "true" for key in DEFAULT_STORAGE_CLASS_ANNOTATIONS)
    )
    return defaults[0] if defaults else None


def object_names(name):
    """Names of the objects made for instance `name`."""
    return {
        "vm": name,
        "cloud_init_secret": "%s-cloud-init" % name,
        "ssh_key_secret": "%s-ssh-public-key" % name,
        "root_disk": "%s-root-disk" % name,
        "service": "%s-load-balancer" % name,
    }


def _b64(text):
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def default_user_data(params):
    """cloud-config when the instance brings none: key-only SSH, and the key when one is given.

    Serialized by a YAML dumper, never by pasting user text into YAML: whatever a value holds, it stays one string.
    """
    document = {"ssh_pwauth": False}
    if params.get("ssh_public_key"):
        document["ssh_authorized_keys"] = [params["ssh_public_key"]]
    return "#cloud-config\n" + yaml_dump(document, default_flow_style=False, sort_keys=False, allow_unicode=True, width=1 << 20)


def _metadata(name, namespace, labels):
    return {"name": name, "namespace": namespace, "labels": dict(labels)}


def build_objects(instance_name, namespace, labels, params, storage_class=None):
    """[(Resource, manifest)] for one instance, in creation order (secrets and disks before the VM)."""
    names = object_names(instance_name)
    objects = []
    if params.get("user_data_secret_ref") is None:
        user_data = params.get("cloud_init") or default_user_data(params)
        objects.append((SECRET, {
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": _metadata(names["cloud_init_secret"], namespace, labels),
            "data": {"userData": _b64(user_data)},
        }))
        user_data_secret = names["cloud_init_secret"]
    else:
        user_data_secret = params["user_data_secret_ref"]["name"]
    if params.get("ssh_public_key"):
        objects.append((SECRET, {
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": _metadata(names["ssh_key_secret"], namespace, labels),
            "data": {"key": _b64(params["ssh_public_key"])},
        }))
    disks = [(names["root_disk"], {"registry": {"url": "docker://%s" % params["image"]}}, params["disk_size"])]
    for index, extra in enumerate(params.get("additional_disks") or []):
        disks.append(("%s-disk-%d" % (instance_name, index + 1), {"blank": {}}, extra["size"]))
    for disk_name, source, size in disks:
        storage = {"resources": {"requests": {"storage": size}}}
        if storage_class:
            storage["storageClassName"] = storage_class
        objects.append((DATA_VOLUME, {
            "apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
            "metadata": _metadata(disk_name, namespace, labels),
            "spec": {"source": source, "storage": storage},
        }))
    objects.append((VIRTUAL_MACHINE, virtual_machine(instance_name, namespace, labels, params, user_data_secret, [d[0] for d in disks])))
    if params.get("exposed_ports"):
        objects.append((SERVICE, {
            "apiVersion": "v1", "kind": "Service",
            "metadata": _metadata(names["service"], namespace, labels),
            "spec": {
                "type": "LoadBalancer",
                "selector": {"kubevirt.io/domain": instance_name},
                "ports": [
                    {"name": "%s-%d" % (p["protocol"].lower(), p["port"]), "port": p["port"], "targetPort": p["port"], "protocol": p["protocol"]}
                    for p in params["exposed_ports"]
                ],
            },
        }))
    return objects


def virtual_machine(name, namespace, labels, params, user_data_secret, disk_names):
    """The VirtualMachine: cores, memory, root disk (+ extra disks), cloud-init, masquerade on the pod network."""
    template_labels = dict(labels)
    template_labels["kubevirt.io/domain"] = name
    disks = [{"name": "rootdisk", "disk": {"bus": "virtio"}, "bootOrder": 1}]
    volumes = [{"name": "rootdisk", "dataVolume": {"name": disk_names[0]}}]
    for index, disk_name in enumerate(disk_names[1:]):
        disks.append({"name": "disk%d" % (index + 1), "disk": {"bus": "virtio"}})
        volumes.append({"name": "disk%d" % (index + 1), "dataVolume": {"name": disk_name}})
    disks.append({"name": "cloudinitdisk", "disk": {"bus": "virtio"}})
    volumes.append({"name": "cloudinitdisk", "cloudInitNoCloud": {"secretRef": {"name": user_data_secret}}})
    spec = {
        "runStrategy": params.get("run_strategy") or "Always",
        "template": {
            "metadata": {"labels": template_labels},
            "spec": {
                "domain": {
                    "cpu": {"cores": params["cores"]},
                    "memory": {"guest": params["memory"]},
                    "resources": {"requests": {"memory": params["memory"]}},
                    "devices": {"disks": disks, "interfaces": [{"name": "default", "masquerade": {}}]},
                },
                "networks": [{"name": "default", "pod": {}}],
                "volumes": volumes,
            },
        },
    }
    if params.get("ssh_public_key"):
        spec["template"]["spec"]["accessCredentials"] = [{
            "sshPublicKey": {
                "source": {"secret": {"secretName": object_names(name)["ssh_key_secret"]}},
                "propagationMethod": {"noCloud": {}},
            }
        }]
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": _metadata(name, namespace, labels), "spec": spec}


def contains(live, desired):
    """Whether every field of `desired` is in `live` with the same value (lists element by element).

    The API adds defaults and status; only what we manage must match.
    """
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(contains(live.get(key), value) for key, value in desired.items())
    if isinstance(desired, list):
        return isinstance(live, list) and len(live) == len(desired) and all(contains(a, b) for a, b in zip(live, desired))
    return live == desired


# Fields the API refuses to change, per kind: a difference there is reported, never written.
IMMUTABLE = {"DataVolume": ("spec",), "Secret": (), "Service": (), "VirtualMachine": ()}


def drift(live, desired):
    """Which managed top-level fields differ: (mutable fields, immutable fields)."""
    changed = [key for key in ("metadata", "spec", "data") if key in desired and not contains(live.get(key), desired[key])]
    immutable = [key for key in changed if key in IMMUTABLE.get(desired["kind"], ())]
    return [key for key in changed if key not in immutable], immutable


def update_patch(desired, fields):
    """Merge patch that sets the managed fields (labels only, of metadata)."""
    patch = {}
    for field in fields:
        patch[field] = {"labels": desired["metadata"]["labels"]} if field == "metadata" else desired[field]
    return patch


def vm_state(vm):
    """(ready, printable status, Ready condition message) of a VirtualMachine."""
    status = (vm or {}).get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    return ready.get("status") == "True", status.get("printableStatus") or "Unknown", ready.get("message") or ready.get("reason") or ""


def vmi_ready(vmi):
    """True when a VirtualMachineInstance is Running with its Ready condition True."""
    status = (vmi or {}).get("status") or {}
    return status.get("phase") == "Running" and any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


# printableStatus values after which waiting longer will not help.
FAILED_PRINTABLE_STATUSES = ("ErrImagePull", "ImagePullBackOff", "CrashLoopBackOff", "DataVolumeError", "ErrorUnschedulable",
                             "ErrorPvcNotFound", "ErrorDataVolumeNotFound")
