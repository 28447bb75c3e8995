# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The KubeVirt objects of one ComputeInstance (docs/contract.md, VM objects), as manifests.

Pure functions: validated VM parameters in, manifests out. Every object carries
the instance labels, so a delete can find everything even without the Tenant.
"""

from __future__ import annotations

import base64
import hashlib
import json

from ansible.module_utils.common.yaml import yaml_dump

from ansible_collections.cloudkit.provisioning.plugins.module_utils.computeinstance import quantity_bytes
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_resources import STATIC_RESOURCES
from ansible_collections.cloudkit.provisioning.plugins.module_utils.reconcile import ABSENT, OwnedField, field_name, get_path

SECRET = STATIC_RESOURCES[("v1", "Secret")]
SERVICE = STATIC_RESOURCES[("v1", "Service")]
DATA_VOLUME = STATIC_RESOURCES[("cdi.kubevirt.io/v1beta1", "DataVolume")]
VIRTUAL_MACHINE = STATIC_RESOURCES[("kubevirt.io/v1", "VirtualMachine")]
VIRTUAL_MACHINE_INSTANCE = STATIC_RESOURCES[("kubevirt.io/v1", "VirtualMachineInstance")]
STORAGE_CLASS = STATIC_RESOURCES[("storage.k8s.io/v1", "StorageClass")]
PERSISTENT_VOLUME_CLAIM = STATIC_RESOURCES[("v1", "PersistentVolumeClaim")]

# Deletion order of docs/contract.md, VM objects (after the VM is stopped and its VMI gone).
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


def boot_inputs_hash(secrets):
    """A short hash of the Secrets a VM reads when it boots (their data), for the boot-inputs template annotation."""
    text = json.dumps([manifest["data"] for manifest in secrets], sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def build_objects(instance_name, namespace, labels, params, storage_class=None, boot_inputs_annotation=None):
    """[(Resource, manifest)] for one instance, in creation order (secrets and disks before the VM).

    With `boot_inputs_annotation`, the VM's template carries that annotation with a hash of its cloud-init and SSH key
    Secrets: new content in them is a template change, which a running VMI shows it lacks (vmi_outdated).
    """
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
    vm = virtual_machine(instance_name, namespace, labels, params, user_data_secret, [d[0] for d in disks])
    if boot_inputs_annotation:
        vm["spec"]["template"]["metadata"]["annotations"] = {
            boot_inputs_annotation: boot_inputs_hash([manifest for resource, manifest in objects if resource is SECRET])}
    objects.append((VIRTUAL_MACHINE, vm))
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


# What this collection owns on each object besides its labels (metadata.labels.<key> of the instance labels; and, on the
# VM, spec.template.metadata.labels.<key>). Everything else (status, other controllers' fields, server defaults) is never
# written after creation. A DataVolume's spec cannot change (CDI refuses it): only its requested-storage annotation is owned.
_TEMPLATE_SPEC = ("spec", "template", "spec")
OWNED_PATHS = {
    "Secret": (("data",),),
    "Service": (("spec", "type"), ("spec", "selector"), ("spec", "ports")),
    "DataVolume": (),
    "VirtualMachine": (
        ("spec", "runStrategy"),
        ("spec", "running"),  # never set by us: removed if someone set it (KubeVirt refuses it next to runStrategy)
        _TEMPLATE_SPEC + ("domain", "cpu", "cores"),
        _TEMPLATE_SPEC + ("domain", "memory", "guest"),
        _TEMPLATE_SPEC + ("domain", "resources", "requests", "memory"),
        _TEMPLATE_SPEC + ("domain", "devices", "disks"),
        _TEMPLATE_SPEC + ("domain", "devices", "interfaces"),
        _TEMPLATE_SPEC + ("networks",),
        _TEMPLATE_SPEC + ("volumes",),
        _TEMPLATE_SPEC + ("accessCredentials",),
    ),
}
# Keys inside the entries of an owned list that the API server owns: a Service port's node port (allocated by it).
IGNORED_IN = {("spec", "ports"): ("nodePort",)}


def owned_fields(manifest, annotation_keys=(), template_annotation_keys=()):
    """[OwnedField] of a desired manifest: its labels, the owned paths of its kind, and the given annotations (of the
    object, and of a VM's template; ABSENT when the manifest does not carry them, so they are removed)."""
    metadata = manifest["metadata"]
    fields = [OwnedField(("metadata", "labels", key), value) for key, value in sorted((metadata.get("labels") or {}).items())]
    for key in annotation_keys:
        fields.append(OwnedField(("metadata", "annotations", key), (metadata.get("annotations") or {}).get(key, ABSENT)))
    if manifest["kind"] == "VirtualMachine":
        template_labels = get_path(manifest, ("spec", "template", "metadata", "labels")) or {}
        fields += [OwnedField(("spec", "template", "metadata", "labels", key), value) for key, value in sorted(template_labels.items())]
        template_annotations = get_path(manifest, ("spec", "template", "metadata", "annotations")) or {}
        fields += [OwnedField(("spec", "template", "metadata", "annotations", key), template_annotations.get(key, ABSENT))
                   for key in template_annotation_keys]
    for path in OWNED_PATHS[manifest["kind"]]:
        fields.append(OwnedField(path, get_path(manifest, path), ignore=IGNORED_IN.get(path, ())))
    return fields


def template_changed(changes):
    """Whether applied changes touch the VM's template (what a running VM sees only after a restart)."""
    return any(change.path[:2] == ("spec", "template") for change in changes)


def _contains(live, desired):
    """Whether `live` has every field of `desired` with the same value (lists element by element, same length): a
    VirtualMachineInstance gets defaults added to what its VM's template says."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(_contains(live.get(key), value) for key, value in desired.items())
    if isinstance(desired, list):
        return isinstance(live, list) and len(live) == len(desired) and all(_contains(a, b) for a, b in zip(live, desired))
    return live == desired


# The template fields a running VirtualMachineInstance must carry (its spec is the template's spec when it started).
_VMI_SPEC_FIELDS = [path[len(_TEMPLATE_SPEC):] for path in OWNED_PATHS["VirtualMachine"] if path[:len(_TEMPLATE_SPEC)] == _TEMPLATE_SPEC]


def vmi_outdated(vmi, vm_manifest, annotation_keys=()):
    """The fields of the desired VM template that a running VirtualMachineInstance does not carry, as names of template
    fields (empty: it runs the desired template). The given template annotations are compared too, when the VMI has them."""
    template = vm_manifest["spec"]["template"]
    stale = []
    for path in _VMI_SPEC_FIELDS:
        desired, live = get_path(template.get("spec") or {}, path), get_path((vmi or {}).get("spec") or {}, path)
        if (desired is ABSENT and live not in (ABSENT, None, [], {})) or (desired is not ABSENT and not _contains(live, desired)):
            stale.append(field_name(_TEMPLATE_SPEC + path))
    for key in annotation_keys:
        desired = ((template.get("metadata") or {}).get("annotations") or {}).get(key)
        live = (((vmi or {}).get("metadata") or {}).get("annotations") or {}).get(key)
        # A VMI without it started before its VM carried it: not known to be stale (no restart just for an upgrade).
        if live is not None and desired != live:
            stale.append(field_name(("spec", "template", "metadata", "annotations", key)))
    return stale


def _storage(dv):
    return ((dv or {}).get("spec") or {}).get("storage") or ((dv or {}).get("spec") or {}).get("pvc") or {}


def _requested(storage):
    return (((storage or {}).get("resources") or {}).get("requests") or {}).get("storage")


def _source_text(source):
    source = source or {}
    url = (source.get("registry") or {}).get("url")
    if url:
        return url[len("docker://"):] if url.startswith("docker://") else url
    if "blank" in source:
        return "a blank disk"
    return ", ".join(sorted(source)) or "no source"


class DiskPlan(object):
    """What bringing one existing DataVolume to its desired state takes.

    ``refused``: [{field, reason, object}] for changes that cannot be made in place; ``problems``: reasons this run cannot
    go on that a later run may not have (unreadable StorageClasses, a claim CDI has not made yet); ``claim_size``: the size
    to request on the PersistentVolumeClaim (None: no expansion); ``requested``: the value of the requested-storage
    annotation (ABSENT when the disk is at its first size).
    """

    def __init__(self):
        self.refused = []
        self.problems = []
        self.claim_size = None
        self.requested = ABSENT


def needs_claim(desired, live, annotation_key):
    """Whether judging a size change of `live` needs its PersistentVolumeClaim: it grew once, or it is to grow."""
    first = quantity_bytes(_requested(_storage(live)))
    wanted = quantity_bytes(_requested(_storage(desired)))
    recorded = quantity_bytes(((live.get("metadata") or {}).get("annotations") or {}).get(annotation_key))
    return first is not None and wanted is not None and (wanted > first or recorded is not None)


def check_disk(desired, live, claim, explicit_class, storage_classes, fields, annotation_key):
    """The DiskPlan for changing the live DataVolume into `desired` (its manifest as built now).

    A DataVolume's source and size are fixed at creation (CDI refuses spec updates). So a new image or a different
    source is refused; a smaller size is refused (a disk never shrinks); a larger one is an expansion of its
    PersistentVolumeClaim, which the API allows only when the claim's StorageClass has allowVolumeExpansion: true, else
    refused; an explicitly chosen StorageClass other than the disk's is refused (a disk cannot move in place).
    `fields` names the spec fields: {"source": ..., "size": ...}. `storage_classes` is None when they cannot be read.
    """
    plan = DiskPlan()
    name = live["metadata"]["name"]
    where = "DataVolume %s/%s" % (live["metadata"].get("namespace"), name)

    def refuse(field, reason):
        plan.refused.append({"field": field, "reason": reason, "object": where})

    old_source, new_source = (live.get("spec") or {}).get("source"), (desired.get("spec") or {}).get("source")
    if old_source != new_source:
        refuse(fields["source"], "the disk %s holds %s and a disk's source cannot change in place (CDI keeps a DataVolume's spec as created): "
                                 "keep %s, or delete the instance and create it again with %s"
               % (name, _source_text(old_source), _source_text(old_source), _source_text(new_source)))
    live_class = _storage(live).get("storageClassName") or ((claim or {}).get("spec") or {}).get("storageClassName")
    if explicit_class and live_class and explicit_class != live_class:
        refuse("storage_class", "the disk %s is on StorageClass %s and cannot move to %s in place" % (name, live_class, explicit_class))
    first = quantity_bytes(_requested(_storage(live)))
    recorded_text = ((live.get("metadata") or {}).get("annotations") or {}).get(annotation_key)
    recorded = quantity_bytes(recorded_text)
    current = recorded if recorded is not None else first
    current_text = recorded_text if recorded is not None else _requested(_storage(live))
    wanted_text = _requested(_storage(desired))
    wanted = quantity_bytes(wanted_text)
    if current is None or wanted is None:
        return plan
    if wanted < current:
        refuse(fields["size"], "%s is smaller than the disk %s's %s and a disk cannot shrink" % (wanted_text, name, current_text))
        return plan
    plan.requested = wanted_text if wanted != first else ABSENT
    if wanted <= first:
        return plan
    claim_size = quantity_bytes(_requested((claim or {}).get("spec"))) if claim is not None else None
    if claim_size is not None and claim_size >= wanted:
        return plan  # its claim is that large already: only the annotation may need writing
    class_name = live_class or explicit_class
    if storage_classes is None:
        plan.problems.append("the disk %s must grow to %s, and the StorageClasses cannot be read to know whether %s allows it"
                             % (name, wanted_text, class_name or "its class"))
        return plan
    found = next((sc for sc in storage_classes if sc["metadata"]["name"] == class_name), None)
    if found is None or found.get("allowVolumeExpansion") is not True:
        refuse(fields["size"], "%s needs the disk %s to grow from %s, and its StorageClass %s %s" % (
            wanted_text, name, current_text, class_name or "(none)",
            "does not exist" if found is None else "does not allow volume expansion (allowVolumeExpansion is not true)"))
        return plan
    if claim is None:
        plan.problems.append("the disk %s must grow to %s, and its PersistentVolumeClaim does not exist yet (CDI makes it): "
                             "run the job again once it does" % (name, wanted_text))
        return plan
    plan.claim_size = wanted_text
    return plan


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
