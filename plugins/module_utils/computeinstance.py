# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""What a ComputeInstance asks for: versions, the action it needs, its VM parameters, its namespace.

Pure functions over the live object (no API calls) except resolve_target_namespace,
which takes a KubeClient.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

from ansible_collections.cloudkit.provisioning.plugins.module_utils.limits import (
    ANNOTATIONS_MAX,
    SECRET_DATA_MAX,
    derived_name_problems,
    size_problem,
    ssh_public_key_problems,
)
from ansible_collections.cloudkit.provisioning.plugins.module_utils.names import UNMANAGED_STATES

TEMPLATE_ID_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9._]*$")

# The ids of the built-in template (roles/ocp_virt_vm) and its aliases: what computeinstance_vm builds
# (module_utils/templates.py selects template roles).
DEFAULT_ALLOWED_TEMPLATES = ("cloudkit.templates.ocp_virt_vm", "osac.templates.ocp_virt_vm", "cloudkit.provisioning.ocp_virt_vm")

# Upstream defaults of the seed-era templateParameters.
DEFAULTS = {
    "cores": 2,
    "memory": "2Gi",
    "disk_size": "10Gi",
    "image": "quay.io/containerdisks/fedora:40",
    "exposed_ports": "22/tcp",
    "run_strategy": "Always",
}

SEED_PARAMETERS = ("cpu_cores", "memory", "disk_size", "image", "ssh_public_key", "cloud_init", "exposed_ports")
RUN_STRATEGIES = ("Always", "Halted")

MAX_CORES = 256
_QUANTITY_RE = re.compile(r"^(?P<number>[0-9]+(\.[0-9]+)?)(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_QUANTITY_FACTORS = {
    None: 1, "k": 10 ** 3, "M": 10 ** 6, "G": 10 ** 9, "T": 10 ** 12, "P": 10 ** 15, "E": 10 ** 18,
    "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60,
}
MEMORY_RANGE = (64 * 2 ** 20, 4 * 2 ** 40)
DISK_RANGE = (2 ** 30, 64 * 2 ** 40)
# registry[:port]/path[:tag][@sha256:digest], lower-case path components as Docker requires.
_IMAGE_RE = re.compile(
    r"^(?:(?P<registry>[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]+)?)/)?"
    r"(?P<path>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
_SSH_KEY_RE = re.compile(
    r"^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/]+={0,3}( .*)?$"
)
# A whole number as a string: ASCII digits only (str.isdigit also takes '²', which int() refuses), and not so long
# that int() refuses it.
_DIGITS_RE = re.compile(r"[0-9]{1,18}")
_PORT_RE = re.compile(r"^(?P<port>[0-9]{1,5})(?:/(?P<protocol>tcp|udp|sctp))?$", re.IGNORECASE)


class ParameterError(ValueError):
    """One or more VM parameters are invalid; each problem names its field."""

    def __init__(self, problems):
        self.problems = list(problems)
        super(ParameterError, self).__init__("; ".join(self.problems))


def quantity_bytes(value):
    """Bytes of a Kubernetes quantity such as 4Gi or 500M; None when it is not one."""
    match = _QUANTITY_RE.fullmatch(value) if isinstance(value, str) else None
    if not match:
        return None
    # Decimal, not float: a number of any length stays finite (out of range, not a crash).
    return int(Decimal(match.group("number")) * _QUANTITY_FACTORS[match.group("suffix")])


def parse_ports(value, field):
    """'22/tcp, 80/tcp' (or a list of such items) -> [{'port': 22, 'protocol': 'TCP'}, ...]."""
    if value is None or value == "":
        return []
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ParameterError(["%s must be a comma-separated string like '22/tcp,80/tcp', got %s" % (field, type(value).__name__)])
    ports = []
    seen = set()
    for raw in items:
        item = str(raw).strip()
        match = _PORT_RE.match(item)
        if not match or not 1 <= int(match.group("port")) <= 65535:
            raise ParameterError(["%s: %r is not PORT[/tcp|udp|sctp] with PORT in 1-65535" % (field, item)])
        port = {"port": int(match.group("port")), "protocol": (match.group("protocol") or "tcp").upper()}
        key = (port["port"], port["protocol"])
        if key not in seen:
            seen.add(key)
            ports.append(port)
    return ports


class _Collector(object):
    """Gathers every problem so a user sees all of them at once."""

    def __init__(self):
        self.problems = []

    def integer(self, value, field, low, high):
        if isinstance(value, str) and _DIGITS_RE.fullmatch(value.strip()):
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.problems.append("%s must be an integer from %d to %d, got %r" % (field, low, high, value))
            return None
        return value

    def quantity(self, value, field, limits):
        size = quantity_bytes(value)
        if size is None:
            self.problems.append("%s must be a quantity such as 4Gi or 512Mi, got %r" % (field, value))
            return None
        if not limits[0] <= size <= limits[1]:
            self.problems.append("%s must be between %s and %s, got %r" % (field, _human(limits[0]), _human(limits[1]), value))
            return None
        return value

    def image(self, value, field):
        if not isinstance(value, str):
            self.problems.append("%s must be a container image reference, got %r" % (field, value))
            return None
        reference = value[len("docker://"):] if value.startswith("docker://") else value
        if not _IMAGE_RE.fullmatch(reference) or len(reference) > 512:
            self.problems.append("%s is not a valid container image reference: %r" % (field, value))
            return None
        return reference

    def text(self, value, field, pattern=None, hint=None):
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            self.problems.append("%s must be a string, got %s" % (field, type(value).__name__))
            return None
        if pattern is not None and not pattern.match(value.strip()):
            self.problems.append("%s %s" % (field, hint))
            return None
        return value.strip() if pattern is not None else value

    def ports(self, value, field):
        try:
            return parse_ports(value, field)
        except ParameterError as error:
            self.problems.extend(error.problems)
            return []


def _human(size):
    for suffix in ("Ti", "Gi", "Mi"):
        factor = _QUANTITY_FACTORS[suffix]
        if size >= factor and size % factor == 0:
            return "%d%s" % (size // factor, suffix)
    return str(size)


def seed_parameters(spec):
    """spec.templateParameters as a dict: the seed-era JSON string decoded, or the object itself; {} when unset.

    Raises ParameterError when it is too large, not JSON, or not an object.
    """
    raw = spec.get("templateParameters")
    if raw in (None, ""):
        return {}
    seed = raw
    if isinstance(raw, str):
        # kubectl apply keeps the whole spec in an annotation, whose limit the parameters must fit.
        too_big = size_problem(raw, "spec.templateParameters", ANNOTATIONS_MAX, "the annotations of an object (kubectl apply keeps the spec there)")
        if too_big:
            raise ParameterError(too_big)
        try:
            seed = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
            raise ParameterError(["spec.templateParameters is not valid JSON: %s" % exc])
    if not isinstance(seed, dict):
        raise ParameterError(["spec.templateParameters must encode a JSON object, got %s" % type(seed).__name__])
    return seed


def vm_parameters(spec):
    """The validated VM parameters of a ComputeInstance spec.

    Seed-era instances carry them as the JSON string spec.templateParameters;
    later ones as typed spec fields, which win over templateParameters field
    by field. Unset values take the upstream defaults. Raises ParameterError
    naming every bad field; nothing may be created from an invalid spec.
    """
    if not isinstance(spec, dict):
        raise ParameterError(["spec must be a mapping"])
    check = _Collector()
    seed = seed_parameters(spec)
    if seed:
        unknown = sorted(set(seed) - set(SEED_PARAMETERS))
        if unknown:
            check.problems.append("spec.templateParameters has unknown parameter(s) %s; known: %s" % (", ".join(unknown), ", ".join(SEED_PARAMETERS)))

    def pick(typed_path, seed_key, default=None):
        """(value, field name) from the typed field, else templateParameters, else the default."""
        node = spec
        for key in typed_path:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None:
            return node, "spec." + ".".join(typed_path)
        if seed_key in seed and seed[seed_key] is not None:
            return seed[seed_key], "spec.templateParameters." + seed_key
        return default, "spec.templateParameters." + seed_key

    def seed_value(key):
        value = seed.get(key)
        return DEFAULTS.get(key) if value in (None, "") else value

    cores, field = pick(("cores",), "cpu_cores", DEFAULTS["cores"])
    params = {"cores": check.integer(cores, field, 1, MAX_CORES)}

    memory_gib = spec.get("memoryGiB")
    if memory_gib is not None:
        gib = check.integer(memory_gib, "spec.memoryGiB", 1, MEMORY_RANGE[1] // 2 ** 30)
        params["memory"] = "%dGi" % gib if gib else None
    else:
        params["memory"] = check.quantity(seed_value("memory"), "spec.templateParameters.memory", MEMORY_RANGE)

    boot_disk = spec.get("bootDisk")
    disk_gib = boot_disk.get("sizeGiB") if isinstance(boot_disk, dict) else None
    if disk_gib is not None:
        gib = check.integer(disk_gib, "spec.bootDisk.sizeGiB", 1, DISK_RANGE[1] // 2 ** 30)
        params["disk_size"] = "%dGi" % gib if gib else None
    else:
        params["disk_size"] = check.quantity(seed_value("disk_size"), "spec.templateParameters.disk_size", DISK_RANGE)

    image, field = pick(("image", "sourceRef"), "image", DEFAULTS["image"])
    params["image"] = check.image(image, field)

    ssh_key, field = pick(("sshKey",), "ssh_public_key")
    params["ssh_public_key"] = check.text(ssh_key, field, _SSH_KEY_RE, "must be an OpenSSH public key line (ssh-ed25519 AAAA... comment)")
    if params["ssh_public_key"]:
        problems = ssh_public_key_problems(params["ssh_public_key"], field)
        check.problems.extend(problems)
        params["ssh_public_key"] = None if problems else params["ssh_public_key"]
    params["cloud_init"] = check.text(seed.get("cloud_init"), "spec.templateParameters.cloud_init")
    check.problems.extend(size_problem(params["cloud_init"], "spec.templateParameters.cloud_init", SECRET_DATA_MAX, "a Secret"))

    user_data_ref = spec.get("userDataSecretRef")
    params["user_data_secret_ref"] = None
    if user_data_ref is not None:
        name = user_data_ref.get("name") if isinstance(user_data_ref, dict) else None
        if not isinstance(name, str) or not name:
            check.problems.append("spec.userDataSecretRef.name must name a Secret in the instance's namespace")
        else:
            params["user_data_secret_ref"] = {"name": name}
            if params["cloud_init"]:
                check.problems.append("spec.userDataSecretRef and spec.templateParameters.cloud_init are both set; use one")

    params["exposed_ports"] = check.ports(seed_value("exposed_ports"), "spec.templateParameters.exposed_ports")

    run_strategy = spec.get("runStrategy", DEFAULTS["run_strategy"])
    if run_strategy not in RUN_STRATEGIES:
        check.problems.append("spec.runStrategy must be one of %s, got %r" % (", ".join(RUN_STRATEGIES), run_strategy))
    params["run_strategy"] = run_strategy

    disks = []
    additional = spec.get("additionalDisks") or []
    if not isinstance(additional, list):
        check.problems.append("spec.additionalDisks must be a list")
        additional = []
    for index, disk in enumerate(additional):
        size = disk.get("sizeGiB") if isinstance(disk, dict) else None
        gib = check.integer(size, "spec.additionalDisks[%d].sizeGiB" % index, 1, DISK_RANGE[1] // 2 ** 30)
        if gib:
            disks.append({"size": "%dGi" % gib})
    params["additional_disks"] = disks

    if check.problems:
        raise ParameterError(check.problems)
    return params


def parameter_fields(spec):
    """The spec field each disk parameter comes from (typed fields win over templateParameters), for messages."""
    spec = spec if isinstance(spec, dict) else {}
    image = spec.get("image")
    boot_disk = spec.get("bootDisk")
    additional = spec.get("additionalDisks")
    return {
        "image": "spec.image.sourceRef" if isinstance(image, dict) and image.get("sourceRef") is not None else "spec.templateParameters.image",
        "disk_size": ("spec.bootDisk.sizeGiB" if isinstance(boot_disk, dict) and boot_disk.get("sizeGiB") is not None
                      else "spec.templateParameters.disk_size"),
        "additional_disks": ["spec.additionalDisks[%d]" % index for index in range(len(additional) if isinstance(additional, list) else 0)],
    }


def check_template(template_id, allowed_templates=DEFAULT_ALLOWED_TEMPLATES):
    """Refuse a templateID that is malformed or not on the allow-list (before any write)."""
    if not isinstance(template_id, str) or not TEMPLATE_ID_RE.fullmatch(template_id):
        raise ParameterError(["spec.templateID must match %s, got %r" % (TEMPLATE_ID_RE.pattern, template_id)])
    if template_id not in allowed_templates:
        raise ParameterError(["spec.templateID %r is not an allowed template; allowed: %s" % (template_id, ", ".join(allowed_templates) or "(none)")])
    return template_id


class ComputeInstance(object):
    """Derived facts of one live ComputeInstance for one set of names."""

    def __init__(self, obj, names):
        self.obj = obj
        self.names = names
        self.metadata = obj.get("metadata") or {}
        self.spec = obj.get("spec") or {}
        self.status = obj.get("status") or {}

    @property
    def name(self):
        return self.metadata.get("name")

    @property
    def namespace(self):
        return self.metadata.get("namespace")

    @property
    def uid(self):
        return self.metadata.get("uid")

    @property
    def annotations(self):
        return self.metadata.get("annotations") or {}

    @property
    def finalizers(self):
        return self.metadata.get("finalizers") or []

    @property
    def desired_config_version(self):
        return self.status.get("desiredConfigVersion") or None

    @property
    def reconciled_config_version(self):
        """From the annotation we write (status.reconciledConfigVersion is the operator's copy of it)."""
        return self.annotations.get(self.names.reconciled_config_version_annotation) or None

    @property
    def deleting(self):
        return bool(self.metadata.get("deletionTimestamp"))

    @property
    def management_state(self):
        return self.annotations.get(self.names.management_state_annotation) or None

    @property
    def managed(self):
        return (self.management_state or "").lower() not in UNMANAGED_STATES

    @property
    def finalizer_present(self):
        return self.names.finalizer in self.finalizers

    def needed_action(self):
        """(action, reason): what the contract (docs/contract.md, Reconciled version) asks of the Ansible side now."""
        if not self.managed:
            return "none", "management-state is %s: hands off" % self.management_state
        if self.deleting:
            if self.finalizer_present:
                return "deprovision", "being deleted and %s is present" % self.names.finalizer
            return "none", "being deleted and %s is already gone" % self.names.finalizer
        desired = self.desired_config_version
        reconciled = self.reconciled_config_version
        if desired is None:
            return "none", "status.desiredConfigVersion is not set yet (the operator has not reconciled this instance)"
        if desired != reconciled:
            return "provision", "desired config version %s, reconciled %s" % (desired, reconciled or "none")
        return "none", "reconciled at config version %s" % desired

    def facts(self):
        """Everything derived, for module results and event payloads."""
        action, reason = self.needed_action()
        return {
            "name": self.name,
            "namespace": self.namespace,
            "uid": self.uid,
            "generation": self.metadata.get("generation"),
            "resource_version": self.metadata.get("resourceVersion"),
            "api_group": self.names.api_group,
            "names": self.names.as_dict(),
            # What every object made for the instance carries, and how a delete finds them.
            "labels": self.names.instance_labels(self.name, self.uid),
            "label_selector": self.names.instance_label_selector(self.uid),
            "desired_config_version": self.desired_config_version,
            "reconciled_config_version": self.reconciled_config_version,
            "deleting": self.deleting,
            "deletion_timestamp": self.metadata.get("deletionTimestamp"),
            "management_state": self.management_state,
            "managed": self.managed,
            "finalizer_present": self.finalizer_present,
            "action": action,
            "action_reason": reason,
            "template_id": self.spec.get("templateID"),
        }


def resolve_target_namespace(client, instance, tenant_resource, vm_resource, for_delete):
    """Where the instance's VM objects live: (namespace or None, how it was found, problem or None).

    Create paths need the Tenant (status.tenantReference -> Tenant status.namespace).
    Delete paths never depend on it: they fall back to
    status.virtualMachineReference.namespace, then to wherever objects carry
    the instance's uid label, so a deleted Tenant never blocks a delete.
    """
    from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_errors import NotFound

    problem = None
    reference = instance.status.get("tenantReference") or {}
    if not reference.get("name"):
        problem = "status.tenantReference is not set (the operator has not assigned a Tenant yet)"
    else:
        tenant_namespace = reference.get("namespace") or instance.namespace
        try:
            tenant = client.get(tenant_resource, reference["name"], tenant_namespace)
        except NotFound:
            problem = "Tenant %s/%s (status.tenantReference) does not exist" % (tenant_namespace, reference["name"])
        else:
            namespace = (tenant.get("status") or {}).get("namespace")
            if namespace:
                return namespace, "tenant", None
            problem = "Tenant %s/%s has no status.namespace yet" % (tenant_namespace, reference["name"])
    if not for_delete:
        return None, None, problem
    vm_reference = instance.status.get("virtualMachineReference") or {}
    if vm_reference.get("namespace"):
        return vm_reference["namespace"], "virtualMachineReference", problem
    if instance.uid:
        found = client.list(vm_resource, label_selector=instance.names.instance_label_selector(instance.uid))["items"]
        if found:
            return found[0]["metadata"]["namespace"], "labels", problem
    return None, None, problem


def assess(client, instance, tenant_resource, vm_resource, allowed_templates, for_delete, target_namespace=None, builtin=True):
    """What a job must know before it acts, every problem named by its field.

    Returns template_allowed, parameters (None when invalid), target_namespace
    (the given one, else resolved as resolve_target_namespace does) with its
    source, and problems. Nothing is raised for the instance's content, so
    each caller decides which problems stop it. With builtin false (another
    template role, module_utils/templates.py) only the namespace is assessed.
    """
    facts = {"template_allowed": True, "parameters": None, "problems": []}
    if builtin:
        try:
            check_template(instance.spec.get("templateID"), allowed_templates)
        except ParameterError as error:
            facts["template_allowed"] = False
            facts["problems"].extend(error.problems)
        try:
            facts["parameters"] = vm_parameters(instance.spec)
        except ParameterError as error:
            facts["problems"].extend(error.problems)
    if not for_delete and builtin:
        # Names Kubernetes would refuse fail the job before its first write; a delete finds objects by label, not name.
        # Imported here: kubevirt imports this module (quantities).
        from ansible_collections.cloudkit.provisioning.plugins.module_utils.kubevirt import object_names

        extra_disks = len((facts["parameters"] or {}).get("additional_disks") or [])
        facts["problems"].extend(derived_name_problems(instance.name, object_names(instance.name), extra_disks))
    if target_namespace:
        facts.update(target_namespace=target_namespace, target_namespace_source="option")
        return facts
    namespace, source, problem = resolve_target_namespace(client, instance, tenant_resource, vm_resource, for_delete)
    facts.update(target_namespace=namespace, target_namespace_source=source)
    if problem and namespace is None:
        facts["problems"].append(problem)
    return facts
