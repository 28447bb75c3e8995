#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Report progress on a ComputeInstance: status subresource, reconciled annotation, Events."""

from __future__ import annotations

DOCUMENTATION = r"""
module: computeinstance_status
short_description: Report progress on a ComputeInstance, conflict-safely
version_added: 0.1.0
description:
  - Patches the status subresource of a ComputeInstance; only the fields given change.
  - Conditions are upserted by type; C(lastTransitionTime) changes only when a condition's C(status)
    changes, and C(observedGeneration) is the generation that was read.
  - Job records are upserted by id, as the seed-era C(provisionJob)/C(deprovisionJob) objects or the
    later C(jobs[]) array.
  - Sets the C(<group>/reconciled-config-version) annotation with a guarded JSON patch on the object's
    metadata; the value must be a real config version, never a placeholder such as C(unknown).
  - Every write carries the resourceVersion it was decided from; on a conflict the object is read
    again and the change merged again, a bounded number of times with jitter.
  - Records a Kubernetes Event on the instance for each phase change and each failure, so
    C(kubectl describe ci NAME) shows the progress.
  - With O(phase_events), records the job's phase Events (job started, lock wait begun and acquired, VM applied,
    DataVolume imported, VM Ready, status written, lock released; for a deprovision VM deleted and finalizer removed),
    each with the C(eventTime) of its phase, after every other write of the module, the lock release included. The
    latency report (M(cloudkit.provisioning.computeinstance_latency_info)) reads them back.
author:
  - cloudkit.provisioning contributors (@cloudkit)
extends_documentation_fragment:
  - cloudkit.provisioning.kube
  - cloudkit.provisioning.instance
attributes:
  check_mode:
    support: full
    description: Computes the new status without writing it or recording events.
  diff_mode:
    support: full
    description: Shows the status fields and the annotation before and after.
options:
  phase:
    description: status.phase.
    type: str
    choices: [Progressing, Failed, Ready, Deleting]
  conditions:
    description:
      - Conditions to upsert by type, each a mapping with C(type) (required, for example C(Accepted),
        C(Progressing), C(Available), C(Deleting)), C(status) (required, C("True"), C("False") or
        C("Unknown")), C(reason) (CamelCase, defaults to the type) and C(message).
    type: list
    elements: dict
  virtual_machine_reference:
    description: status.virtualMachineReference.
    type: dict
    suboptions:
      namespace:
        description: Namespace of the KubeVirt VirtualMachine.
        type: str
        required: true
      name:
        description: Name of the KubeVirt VirtualMachine.
        type: str
        required: true
  job:
    description:
      - A job record to upsert by id, a mapping with C(id) (required, the AAP job id), C(type)
        (required, C(provision) or C(deprovision)), C(state) (required, one of C(Pending), C(Waiting),
        C(Running), C(Succeeded), C(Failed), C(Canceled), C(Unknown)), C(message),
        C(block_deletion_on_failure) (bool) and C(config_version) (C(jobs[]) records only).
    type: dict
  job_records:
    description:
      - Where job records go. V(objects) is the seed-era C(provisionJob)/C(deprovisionJob),
        V(list) the later C(jobs[]) array, V(auto) the list when the status already has one.
    type: str
    choices: [auto, objects, list]
    default: auto
  last_restarted_at:
    description: status.lastRestartedAt (RFC 3339), after a restart.
    type: str
  reconciled_config_version:
    description:
      - Set the C(<group>/reconciled-config-version) annotation to this value. Only after a provision
        fully succeeded, with the C(status.desiredConfigVersion) that provision read at its start.
    type: str
  event:
    description:
      - An extra Event to record on the instance, a mapping with C(reason) (required, CamelCase),
        C(message) and C(type) (C(Normal), the default, or C(Warning)).
    type: dict
  record_events:
    description: Record Events for phase changes and failures.
    type: bool
    default: true
  add_finalizer:
    description:
      - First make sure the instance carries this collection's finalizer C(<group>/computeinstance-aap),
        so a delete waits for this job and cleans up after it. The first write of a provision; it fails
        on an instance that is already being deleted (the API refuses new finalizers then).
      - One read serves the finalizer, the status and the annotation, which the separate
        M(cloudkit.provisioning.finalizer) task would read again.
    type: bool
    default: false
  remove_finalizer:
    description:
      - After the status writes, remove this collection's finalizer C(<group>/computeinstance-aap), the last
        write of a successful deprovision, which lets the instance go. Guarded by the instance's uid.
    type: bool
    default: false
  release_lock:
    description:
      - After the writes, release the instance's lock (its Lease), which O(lock_holder) must hold. Another
        holder's lock is never touched; a job whose lock was taken over fails with C(fenced=LockLost) before
        its first write. The last write of a provision, which saves the job a separate
        M(cloudkit.provisioning.computeinstance_lock) task with
        O(cloudkit.provisioning.computeinstance_lock#module:state=absent).
      - Not in check mode, and not when the instance is gone.
    type: bool
    default: false
  lock_holder:
    description:
      - The holder identity of the job's lock, as given to M(cloudkit.provisioning.computeinstance_lock).
        Required with O(release_lock).
      - When set, the module acts as a lock-holding job; every write first verifies that the instance's
        Lease is still held by O(lock_holder) (renewing it), and none is sent once it is not. The module then fails
        with C(fenced=LockLost).
    type: str
  phase_events:
    description:
      - Record the job's phase Events on the instance, once this module's writes (and the lock release) are done,
        so that they cost the path to Ready nothing. Requires O(lock_holder), which names the job in each Event
        (C(reportingInstance)). Not in check mode, and a failed Event is a warning, never a failure.
      - The module adds its own marks. C(status_written) after the status and annotation writes (when it was given
        any); C(finalizer_removed) and C(lock_released) when it did those.
    type: dict
    suboptions:
      action:
        description: Which job this is; the Events' C(action).
        type: str
        required: true
        choices: [Provision, Deprovision]
      timings:
        description:
          - When each earlier phase ended, as the other modules return it in RV(timings) (RFC 3339 times keyed
            C(job_started), C(deletion_requested), C(lock_wait_begun), C(lock_acquired), C(vm_applied),
            C(datavolume_imported), C(vm_ready), C(vm_deleted)), plus C(lock_waited_for), the holder this job waited
            for.
          - An unknown key or a value that is not a time fails the task, naming it, before anything is written.
        type: dict
        default: {}
notes:
  - Provisioning outcomes (O(phase=Ready) or V(Progressing), O(reconciled_config_version), O(add_finalizer)) are
    refused on an instance that is being deleted, with C(fenced=InstanceDeleting); a delete then proceeds at once.
  - With a uid (from O(payload) or O(uid)), nothing is written to a namesake that replaced the instance; the module
    fails with C(fenced=InstanceGone).
"""

EXAMPLES = r"""
- name: Say provisioning started
  cloudkit.provisioning.computeinstance_status:
    payload:
      ansible_eda: "{{ ansible_eda | default(None) }}"
      osac_job_vars: "{{ osac_job_vars | default(None) }}"
      compute_instance: "{{ compute_instance | default(None) }}"
    phase: Progressing
    conditions:
      - type: Progressing
        status: "True"
        reason: Provisioning
        message: creating the virtual machine

- name: Report success and the config version that is now reconciled
  cloudkit.provisioning.computeinstance_status:
    name: vm1
    namespace: tenants
    phase: Ready
    conditions:
      - type: Available
        status: "True"
        reason: VirtualMachineReady
    virtual_machine_reference:
      namespace: tenant-acme
      name: vm1
    reconciled_config_version: "{{ instance.desired_config_version }}"
    release_lock: true
    lock_holder: "job-{{ awx_job_id }}@aap.example.com"
    # Written after the lock release, each with the time of its phase.
    phase_events:
      action: Provision
      timings: "{{ {'job_started': job_started_at} | combine(lock.timings, vm.timings) }}"

- name: Own the instance and say provisioning started, in one read
  cloudkit.provisioning.computeinstance_status:
    name: vm1
    namespace: tenants
    add_finalizer: true
    phase: Progressing
"""

RETURN = r"""
exists:
  description: Whether the ComputeInstance exists; nothing is written to a missing one.
  returned: always
  type: bool
status:
  description: The status after the change (predicted in check mode).
  returned: when RV(exists)
  type: dict
finalizers:
  description: The instance's finalizers after the change (predicted in check mode).
  returned: when RV(exists)
  type: list
  elements: str
changed_fields:
  description:
    - The top-level status fields that changed, plus C(annotation) when the annotation did and
      C(finalizers) when O(add_finalizer) added ours.
  returned: always
  type: list
  elements: str
  sample: [conditions, phase]
lock_released:
  description: Whether O(release_lock) deleted the Lease (false when another holder has it, or there was none).
  returned: always
  type: bool
resource_version:
  description: metadata.resourceVersion after the change.
  returned: when RV(exists)
  type: str
events:
  description: The Events recorded, as reason, message, type.
  returned: always
  type: list
  elements: dict
timings:
  description:
    - When this module's own phases ended (RFC 3339, microseconds), as O(phase_events) records them; an AAP job log
      shows them.
  returned: always
  type: dict
  sample: {status_written: "2026-05-04T10:00:31.402113Z", lock_released: "2026-05-04T10:00:31.455871Z"}
phase_events:
  description: The phase Events recorded, as reason, message, event_time and action (empty without O(phase_events)).
  returned: always
  type: list
  elements: dict
  sample:
    - reason: LockAcquired
      message: "provision job job-42@aap.example.com: lock acquired; waited for job-41@aap.example.com"
      event_time: "2026-05-04T10:00:02.118000Z"
      action: Provision
"""

from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_module import (
    INSTANCE_CONSTRAINTS, INSTANCE_SPEC, KubeModule,
)
from ansible_collections.cloudkit.provisioning.plugins.module_utils.outcome import write_outcome


def main():
    argument_spec = {
        "phase": {"type": "str", "choices": ["Progressing", "Failed", "Ready", "Deleting"]},
        "conditions": {"type": "list", "elements": "dict"},
        "virtual_machine_reference": {
            "type": "dict",
            "options": {"namespace": {"type": "str", "required": True}, "name": {"type": "str", "required": True}},
        },
        "job": {"type": "dict"},
        "job_records": {"type": "str", "choices": ["auto", "objects", "list"], "default": "auto"},
        "last_restarted_at": {"type": "str"},
        "reconciled_config_version": {"type": "str"},
        "event": {"type": "dict"},
        "record_events": {"type": "bool", "default": True},
        "add_finalizer": {"type": "bool", "default": False},
        "remove_finalizer": {"type": "bool", "default": False},
        "release_lock": {"type": "bool", "default": False},
        "lock_holder": {"type": "str"},
        "phase_events": {
            "type": "dict",
            "options": {"action": {"type": "str", "required": True, "choices": ["Provision", "Deprovision"]},
                        "timings": {"type": "dict", "default": {}}},
        },
    }
    argument_spec.update(INSTANCE_SPEC)
    module = KubeModule(argument_spec=argument_spec, supports_check_mode=True,
                        required_if=[("release_lock", True, ("lock_holder",))],
                        mutually_exclusive=INSTANCE_CONSTRAINTS["mutually_exclusive"]
                        + [("add_finalizer", "remove_finalizer")],
                        **{k: v for k, v in INSTANCE_CONSTRAINTS.items() if k != "mutually_exclusive"})
    module.exit_json(**write_outcome(module))


if __name__ == "__main__":
    main()
