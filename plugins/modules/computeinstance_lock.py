#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Take, renew or release the per-instance Lease that keeps provision and deprovision apart."""

from __future__ import annotations

DOCUMENTATION = r"""
module: computeinstance_lock
short_description: Take, renew or release the lock of one ComputeInstance
version_added: 0.1.0
description:
  - One C(coordination.k8s.io/v1) Lease per ComputeInstance, named C(computeinstance-<uid>) in the
    instance's namespace and labelled with the instance labels. Provision and deprovision jobs take it
    first, so they never run at the same time, whatever launched them and however many times.
  - V(present) acquires it, waiting up to O(timeout) seconds on a watch of the Lease while another job
    holds it. A lease not renewed for its C(leaseDurationSeconds) is taken over (its holder died or
    was canceled), and so is the lease of a holder in O(dead_holders). A lease whose renewTime cannot
    be read counts as held. Taking it again as the same holder renews it.
  - V(renewed) extends it and fails when it is no longer ours. The modules that write for a lock-holding job
    (M(cloudkit.provisioning.computeinstance_status), M(cloudkit.provisioning.computeinstance_vm), through
    their C(lock_holder) option) renew it in the background and check it before every write.
  - V(absent) deletes it only when we hold it, guarded by its resourceVersion.
author:
  - cloudkit.provisioning contributors (@cloudkit)
extends_documentation_fragment:
  - cloudkit.provisioning.kube
  - cloudkit.provisioning.instance
attributes:
  check_mode:
    support: full
    description: Reports whether the lock could be taken or released now, without writing.
  diff_mode:
    support: none
    description: The Lease is bookkeeping; its holder is in the result.
options:
  holder:
    description:
      - Who holds the lock. The role uses C(job-<awx_job_id>@<controller host>) for a controller's job and
        C(run-<random>@<host>) for a hand run, so that a delete asks only the controller that ran a holder
        whether its job ended. Must be the same for every task of one job.
    type: str
    required: true
  controller_host:
    description:
      - The automation controller this job can ask about other jobs. RV(holder_job) is the id of the holder's
        job only when the holder names this controller (C(job-<id>@<host>)); jobs of any other controller,
        and hand runs, are taken over only when their lease lapses.
    type: str
  state:
    description: V(present) to acquire, V(renewed) to extend, V(absent) to release.
    type: str
    choices: [present, renewed, absent]
    default: present
  lease_duration:
    description:
      - Seconds the lease lasts without renewal; how long a dead holder blocks others. At least 15.
    type: int
    default: 60
  timeout:
    description: Seconds V(present) waits for another holder to release or lapse.
    type: int
    default: 900
  dead_holders:
    description:
      - Holders known to have stopped, for example the provision jobs a delete just canceled and saw
        terminal. Their lease is taken over at once instead of after it lapses.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Take the instance's lock before touching it
  cloudkit.provisioning.computeinstance_lock:
    payload: {compute_instance: "{{ compute_instance }}"}
    holder: "job-{{ awx_job_id }}@aap.example.com"
  register: lock

- name: Release it whatever happened
  cloudkit.provisioning.computeinstance_lock:
    payload: {compute_instance: "{{ compute_instance }}"}
    holder: "job-{{ awx_job_id }}@aap.example.com"
    state: absent
"""

RETURN = r"""
exists:
  description: Whether the ComputeInstance exists; without it there is nothing to lock.
  returned: always
  type: bool
acquired:
  description: Whether we hold the lock after this task (false after a release).
  returned: always
  type: bool
lease:
  description: Namespace and name of the Lease.
  returned: when RV(exists)
  type: dict
  sample: {namespace: tenants, name: computeinstance-5b0f6d2e-...}
holder:
  description: The holder seen on the Lease after this task (null when there is no Lease).
  returned: always
  type: str
waited:
  description: Seconds spent waiting for another holder.
  returned: when O(state=present)
  type: float
taken_over_from:
  description: The holder whose lapsed lease was taken over, if any.
  returned: when O(state=present)
  type: str
holder_job:
  description: The job id of RV(holder) when it is a job of O(controller_host); null otherwise.
  returned: always
  type: int
timings:
  description:
    - When the wait for the lock began and when it was acquired (RFC 3339, microseconds), and C(lock_waited_for), the
      holder that was waited for (null when the lock was free). Pass them on to
      O(cloudkit.provisioning.computeinstance_status#module:phase_events); an AAP job log shows them here.
  returned: when O(state=present), not in check mode
  type: dict
  sample: {lock_wait_begun: "2026-05-04T10:00:01.002000Z", lock_acquired: "2026-05-04T10:00:09.118000Z",
           lock_waited_for: "job-41@aap.example.com"}
"""

from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_errors import KubeError
from ansible_collections.cloudkit.provisioning.plugins.module_utils.times import micro_time, utc_now
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_module import (
    INSTANCE_CONSTRAINTS, INSTANCE_SPEC, KubeModule,
)
from ansible_collections.cloudkit.provisioning.plugins.module_utils.lock import (
    InstanceLock,
    LockLost,
    LockTimeout,
    check_lease_duration,
    holder_job,
    holder_of,
)


def main():
    argument_spec = {
        "holder": {"type": "str", "required": True},
        "state": {"type": "str", "choices": ["present", "renewed", "absent"], "default": "present"},
        "lease_duration": {"type": "int", "default": 60},
        "timeout": {"type": "int", "default": 900},
        "dead_holders": {"type": "list", "elements": "str", "default": []},
        "controller_host": {"type": "str"},
    }
    argument_spec.update(INSTANCE_SPEC)
    module = KubeModule(argument_spec=argument_spec, supports_check_mode=True, **INSTANCE_CONSTRAINTS)
    params = module.params
    try:
        check_lease_duration(params["lease_duration"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    identity, names = module.identify_instance()
    live, _gone = module.read_instance(identity, names)
    if live is None and not (params["state"] == "absent" and identity.get("uid")):
        # Nothing to lock; but a release after the instance went (or was re-created) still finds its Lease by uid.
        module.exit_json(changed=False, exists=False, acquired=False, holder=None, holder_job=None)
    uid = live["metadata"]["uid"] if live else identity["uid"]
    owner = None
    if live is not None:
        owner = {"apiVersion": live["apiVersion"], "kind": live["kind"], "name": live["metadata"]["name"], "uid": uid}
    lock = InstanceLock(module.client, identity["namespace"], uid, params["holder"], params["lease_duration"],
                        labels=names.instance_labels(identity["name"], uid), owner=owner,
                        dead_holders=params["dead_holders"])
    result = {"exists": live is not None, "lease": {"namespace": lock.namespace, "name": lock.name}}

    def done(holder, **facts):
        module.exit_json(holder=holder, holder_job=holder_job(holder, params["controller_host"]),
                         **dict(result, **facts))

    try:
        if module.check_mode:
            done(**lock.preview(params["state"]))
        if params["state"] == "present":
            timings = {"lock_wait_begun": micro_time(utc_now()), "lock_waited_for": None}

            def note_holder(lease):
                timings["lock_waited_for"] = holder_of(lease)

            taken = lock.acquire(params["timeout"], on_wait=note_holder)
            timings["lock_acquired"] = micro_time(utc_now())
            if taken["taken_over_from"]:
                timings["lock_waited_for"] = taken["taken_over_from"]
            done(lock.holder, changed=not taken["already_held"], acquired=True, waited=round(taken["waited"], 3),
                 taken_over_from=taken["taken_over_from"], timings=timings)
        if params["state"] == "renewed":
            lock.adopt_duration(lock.read())
            lock.renew()
            done(lock.holder, changed=True, acquired=True)
        released, seen = lock.release()
        done(None if released else seen, changed=released, acquired=False)
    except LockTimeout as exc:
        module.fail_json(msg=str(exc), acquired=False, **result)
    except LockLost as exc:
        module.fail_api(exc, f"cannot renew Lease {lock.namespace}/{lock.name}", acquired=False, **result)
    except KubeError as error:
        verb = {"present": "acquire", "renewed": "renew", "absent": "release"}[params["state"]]
        module.fail_api(error, f"cannot {verb} Lease {lock.namespace}/{lock.name}", **result)


if __name__ == "__main__":
    main()
