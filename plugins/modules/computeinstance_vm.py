#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Create or delete the KubeVirt VM of a ComputeInstance, with its disks, secrets and service."""

from __future__ import annotations

DOCUMENTATION = r"""
module: computeinstance_vm
short_description: Create or delete the KubeVirt virtual machine of a ComputeInstance
version_added: 0.1.0
description:
  - Builds the objects of one ComputeInstance in its Tenant's namespace, each labelled with the instance
    labels. They are a cloud-init Secret (C(<name>-cloud-init), unless C(spec.userDataSecretRef) names
    one), an SSH key Secret (C(<name>-ssh-public-key)) when a key is given, a CDI DataVolume
    (C(<name>-root-disk)) imported from the image, one blank DataVolume per additional disk, the
    VirtualMachine (C(<name>)), and a LoadBalancer Service (C(<name>-load-balancer)) for the exposed ports.
  - Reads the VM parameters from the seed-era C(spec.templateParameters) JSON or the later typed spec
    fields (typed fields win), with the upstream defaults (2 cores, 2Gi, 10Gi, Fedora, port 22/tcp).
    Every parameter is validated first, and C(spec.templateID) must be on O(allowed_templates). A bad
    value fails with the field's name before anything is written.
  - A declarative apply of the whole desired state. Every object's owned fields (labels; Secret C(data); Service
    C(spec.type), C(spec.selector), C(spec.ports) except the node ports the API server allocates; the VM's
    C(runStrategy), template labels, cores, memory, disks, interfaces, networks, volumes and C(accessCredentials)) are set
    exactly with one JSON patch guarded by C(test) operations, so fields the spec drops are removed. Everything else
    (status, fields of KubeVirt, CDI and the API server, other writers' labels and annotations) is left alone. Objects
    that carry the instance's uid label and that the spec no longer wants (the SSH key Secret once the key is removed,
    the Service once no port is exposed, an additional disk removed) are deleted, each with a uid precondition.
  - Idempotent. Objects that already match are not written. A running VM whose VirtualMachineInstance lacks a field of
    the desired template is restarted (O(restart_on_spec_change)); the template carries a hash of the cloud-init and SSH
    key Secrets (annotation C(<group>/boot-inputs)), which are read only when the VM boots, so new content in them
    restarts it too. The task reports Ready only once a VirtualMachineInstance with the desired template runs. A
    C(spec.restartRequestedAt) later than C(status.lastRestartedAt) restarts it as well (RV(restarted_at)).
  - Changes that cannot be made in place are refused before anything is written, and the task fails with RV(refused)
    naming each spec field and why. They are a new image (a disk's source), a smaller disk, a larger disk whose
    StorageClass does not allow volume expansion, and an O(storage_class) other than the disks' own. A larger disk on a
    class with C(allowVolumeExpansion) true grows in place (its PersistentVolumeClaim is expanded).
  - Disks use the cluster's default StorageClass unless O(storage_class) is set; existing disks keep their class.
  - RV(changes) and RV(summary) say per object what was created, updated (with the fields), deleted or left unchanged;
    with C(--diff) the before and after of each changed field is shown (Secret data only as size and hash).
  - V(absent) stops the VM and waits until its VirtualMachineInstance is gone. It then deletes the VM, the
    Services, the DataVolumes and the Secrets carrying the instance's labels, and waits until they are gone.
    Not found counts as done, and a deleted Tenant does not block it.
author:
  - cloudkit.provisioning contributors (@cloudkit)
extends_documentation_fragment:
  - cloudkit.provisioning.kube
  - cloudkit.provisioning.instance
attributes:
  check_mode:
    support: full
    description: Reports which objects would be created, updated or deleted.
  diff_mode:
    support: full
    description: Shows, per object, the owned fields before and after (Secret data as size and hash only).
options:
  state:
    description: Whether the VM and its objects should exist.
    type: str
    choices: [present, absent]
    default: present
  allowed_templates:
    description:
      - The C(spec.templateID) values this module builds; anything else is refused before any write.
      - This module is the built-in template C(cloudkit.provisioning.ocp_virt_vm) (role C(cloudkit.provisioning.ocp_virt_vm)),
        which the ids C(cloudkit.templates.ocp_virt_vm) and C(osac.templates.ocp_virt_vm) select too.
    type: list
    elements: str
    default: [cloudkit.templates.ocp_virt_vm, osac.templates.ocp_virt_vm, cloudkit.provisioning.ocp_virt_vm]
  target_namespace:
    description:
      - Namespace of the VM objects. Default is the Tenant's C(status.namespace). For V(absent), when the
        Tenant is gone, it is C(status.virtualMachineReference.namespace), or wherever objects carry the
        instance's labels.
    type: str
  storage_class:
    description:
      - StorageClass of the disks; default is the cluster's default StorageClass for new disks, and their own class for
        existing ones. A class other than an existing disk's is refused (a disk cannot move in place).
    type: str
  wait:
    description: Wait for the VM to be Ready (V(present)) or for everything to be gone (V(absent)).
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait.
    type: int
    default: 600
  restart_on_spec_change:
    description:
      - Restart a running VM whose template or boot Secrets (cloud-init, SSH key) changed, so new cores, memory, disks
        or keys take effect now.
    type: bool
    default: true
  lock_holder:
    description:
      - The holder of the instance's lock (M(cloudkit.provisioning.computeinstance_lock)). The lock is renewed in
        the background while the module runs, every write first checks that it is still held, and the task fails
        (C(fenced=LockLost)) as soon as it was lost, writing nothing more.
      - With O(state=present) the task also stops (C(fenced=InstanceDeleting)) within seconds once the instance is
        being deleted, even while waiting for the VM, so the delete need not wait for a whole provision.
    type: str
"""

EXAMPLES = r"""
- name: Provision the VM and wait until it is Ready
  cloudkit.provisioning.computeinstance_vm:
    payload: {compute_instance: "{{ compute_instance }}"}
    lock_holder: "job-{{ awx_job_id }}@aap.example.com"
    wait_timeout: 900
  register: vm

- name: Deprovision everything of the instance
  cloudkit.provisioning.computeinstance_vm:
    name: vm1
    namespace: tenants
    state: absent
"""

RETURN = r"""
exists:
  description: Whether the ComputeInstance exists.
  returned: always
  type: bool
state:
  description: V(Succeeded) when the VM is Ready (or everything is gone), V(Failed) otherwise.
  returned: always
  type: str
  sample: Succeeded
message:
  description: What happened, or why it failed.
  returned: always
  type: str
  sample: VirtualMachine tenant-acme/vm1 is Ready
vm_reference:
  description: Namespace and name of the VirtualMachine.
  returned: always
  type: dict
  sample: {namespace: tenant-acme, name: vm1}
created:
  description: Objects created, as C(Kind namespace/name).
  returned: always
  type: list
  elements: str
updated:
  description: Objects patched (or stopped, for V(absent)).
  returned: always
  type: list
  elements: str
deleted:
  description: Objects deleted (with V(present), the ones the spec no longer wants).
  returned: always
  type: list
  elements: str
changes:
  description: One entry per object looked at, in the order they were handled.
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: The object's kind.
      type: str
    namespace:
      description: The object's namespace.
      type: str
    name:
      description: The object's name.
      type: str
    action:
      description: V(created), V(updated), V(deleted) or V(unchanged).
      type: str
    fields:
      description: For V(updated), each owned field that changed, as C(path old -> new), C(path added) or C(path removed).
      type: list
      elements: str
    note:
      description: Why, when it is not the spec's plain content (a deleted object no longer in the spec, a stopped VM).
      type: str
      returned: when there is one
  sample:
    - {kind: VirtualMachine, namespace: tenant-acme, name: vm1, action: updated,
       fields: ["spec.template.spec.domain.cpu.cores 2 -> 1", "spec.template.spec.accessCredentials removed"]}
    - {kind: Secret, namespace: tenant-acme, name: vm1-ssh-public-key, action: deleted, fields: [], note: no longer in the spec}
summary:
  description: RV(changes), RV(refused) and RV(notes) as lines for a job log.
  returned: always
  type: list
  elements: str
  sample: ["updated VirtualMachine tenant-acme/vm1: spec.template.spec.domain.cpu.cores 2 -> 1", "deleted Service tenant-acme/vm1-load-balancer"]
refused:
  description: Changes the spec asks for that cannot be made in place; when not empty, nothing was written and the task failed.
  returned: always
  type: list
  elements: dict
  contains:
    field:
      description: The spec field (or V(storage_class), the option) that asks for it.
      type: str
    reason:
      description: Why it cannot be made in place, and what can be done instead.
      type: str
    object:
      description: The object concerned, as C(Kind namespace/name).
      type: str
  sample:
    - {field: spec.templateParameters.image, object: DataVolume tenant-acme/vm1-root-disk,
       reason: "the disk vm1-root-disk holds quay.io/containerdisks/fedora:40 and a disk's source cannot change in place ..."}
diff:
  description: With C(--diff), per changed object the owned fields before and after.
  returned: when diff mode is on
  type: list
  elements: dict
notes:
  description: Restarts done or pending.
  returned: always
  type: list
  elements: str
restarted_at:
  description: The C(spec.restartRequestedAt) served by a restart, or by the VM's next start when it was not running (or the restart
    time after a template change); null otherwise.
  returned: always
  type: str
waited_on:
  description: The last thing waited for.
  returned: always
  type: str
timings:
  description:
    - When each phase ended (RFC 3339, microseconds), seen on the way without extra requests. V(present) -
      C(vm_applied) (every object written), C(datavolume_imported) (the VM left C(Provisioning)), C(vm_ready) (none
      when halted, as nothing boots); V(absent) - C(vm_deleted) (everything gone). Pass them on to
      O(cloudkit.provisioning.computeinstance_status#module:phase_events); an AAP job log shows them here.
    - Empty in check mode; a phase not reached (a failure, O(wait=false)) is missing.
  returned: always
  type: dict
  sample: {vm_applied: "2026-05-04T10:00:03.201000Z", datavolume_imported: "2026-05-04T10:00:21.950000Z",
           vm_ready: "2026-05-04T10:00:29.004000Z"}
parameters:
  description: The validated VM parameters used.
  returned: when O(state=present)
  type: dict
"""

from ansible_collections.cloudkit.provisioning.plugins.module_utils.computeinstance import DEFAULT_ALLOWED_TEMPLATES, ComputeInstance, assess
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_errors import KubeError
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_resources import contract_resources
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_module import INSTANCE_CONSTRAINTS, INSTANCE_SPEC, KubeModule
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kubevirt import VIRTUAL_MACHINE
from ansible_collections.cloudkit.provisioning.plugins.module_utils.lifecycle import ensure_absent, ensure_present
from ansible_collections.cloudkit.provisioning.plugins.module_utils.lock import InstanceDeleting


def main():
    argument_spec = {
        "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        "allowed_templates": {"type": "list", "elements": "str", "default": list(DEFAULT_ALLOWED_TEMPLATES)},
        "target_namespace": {"type": "str"},
        "storage_class": {"type": "str"},
        "wait": {"type": "bool", "default": True},
        "wait_timeout": {"type": "int", "default": 600},
        "restart_on_spec_change": {"type": "bool", "default": True},
        "lock_holder": {"type": "str"},
    }
    argument_spec.update(INSTANCE_SPEC)
    module = KubeModule(argument_spec=argument_spec, supports_check_mode=True, **INSTANCE_CONSTRAINTS)
    params = module.params
    identity, names = module.identify_instance()
    tenant_resource = contract_resources(names)[1]
    client = module.client
    present = params["state"] == "present"
    where = "ComputeInstance %s/%s" % (identity["namespace"], identity["name"])
    live, gone = module.read_instance(identity, names)
    if live is None:
        outcome = {"changed": False, "exists": False, "vm_reference": None, "message": "%s: %s" % (where, gone),
                   "created": [], "updated": [], "deleted": [], "changes": [], "summary": [], "refused": [], "notes": [],
                   "restarted_at": None, "waited_on": None, "timings": {}}
        if present:
            module.fail_json(msg=outcome.pop("message"), state="Failed", **outcome)
        module.exit_json(state="Succeeded", **outcome)
    instance = ComputeInstance(live, names)

    try:
        facts = assess(client, instance, tenant_resource, VIRTUAL_MACHINE, params["allowed_templates"], not present, params["target_namespace"])
    except KubeError as error:
        module.fail_api(error, "cannot resolve the namespace of %s" % where)
    if present and facts["problems"]:
        # Nothing is written for an instance that cannot be provisioned as it is.
        module.fail_json(msg="%s cannot be provisioned: %s" % (where, "; ".join(facts["problems"])), exists=True, state="Failed", problems=facts["problems"])
    params_used, namespace = facts["parameters"], facts["target_namespace"]

    tick = None
    if present and instance.deleting:
        module.fail_api(InstanceDeleting("%s is being deleted (since %s): not provisioned" % (where, live["metadata"]["deletionTimestamp"])),
                        "cannot provision the VM of %s" % where, exists=True, state="Failed")
    if params["lock_holder"] and not module.check_mode:
        # A provision stops at once when its instance is being deleted; every wait below checks the fence.
        tick = module.hold_lease(live, names, params["lock_holder"], stop_if_deleting=present).check
    try:
        if present:
            outcome = ensure_present(client, instance, params_used, namespace, storage_class=params["storage_class"], check_mode=module.check_mode,
                                     wait=params["wait"], timeout=params["wait_timeout"], restart_on_spec_change=params["restart_on_spec_change"],
                                     tick=tick)
        else:
            outcome = ensure_absent(client, instance.name, instance.uid, names, namespace, check_mode=module.check_mode,
                                    wait=params["wait"], timeout=params["wait_timeout"], tick=tick)
    except KubeError as error:
        module.fail_api(error, "cannot %s the VM of %s" % ("provision" if present else "deprovision", where), exists=True, state="Failed")
    result = outcome.as_dict()
    result.update(changed=outcome.changed, exists=True)
    if module._diff:
        result["diff"] = outcome.diff
    if present:
        result["parameters"] = params_used
    if outcome.state == "Failed":
        # Refused or blocked before any write: the message names the instance, as a validation failure does.
        module.fail_json(msg="%s: %s" % (where, outcome.message) if outcome.blocked else outcome.message, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
