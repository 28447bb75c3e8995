#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Find, and with apply remove, what failed or killed provisioning jobs left behind."""

from __future__ import annotations

DOCUMENTATION = r"""
module: computeinstance_cleanup
short_description: Find and remove what failed or killed provisioning jobs left behind
version_added: 0.1.0
description:
  - Lists, and with O(apply=true) removes, the leftovers of failed runs. Without O(apply) (the default) and in
    check mode nothing is written; the result says what would be removed, why, and on what evidence.
  - VM objects (VirtualMachine, Service, DataVolume, Secret) labelled with the uid of a ComputeInstance that no longer
    exists, or that was deleted and re-created under its name. Uids are never reused, so such an object belongs to
    no one; it is deleted with a uid precondition, so an object made since under the same name is never touched.
  - Instance Leases (C(computeinstance-<uid>)) whose ComputeInstance no longer exists and that no live holder renews,
    or whose holder's job has ended, as the controller at O(controller_host) says. Only holders of that controller
    (C(job-<id>@<controller>)) are asked about; a holder of another controller is left alone and reported. A Lease
    is deleted with the resourceVersion it was judged on, so a job that took it over in between keeps it.
  - Our finalizer (C(<api group>/computeinstance-aap)) on a ComputeInstance being deleted, when no job of
    O(templates) is running or queued for it, none of its VM objects is left and its Lease is free. The removal
    takes the instance's Lease as a job would, checks everything again, and removes only that finalizer, testing the
    instance's uid. The operator's own finalizer is never touched. This needs O(controller_host), since without the
    controller
    there is no knowing whether a deprovision job is queued, and the finalizer is kept.
  - With O(cancel_jobs=true), active jobs of O(templates) whose ComputeInstance no longer exists are canceled.
  - Every removal is reported with its reason and evidence, and recorded as an Event on the ComputeInstance when it
    still exists.
author:
  - cloudkit.provisioning contributors (@cloudkit)
extends_documentation_fragment:
  - cloudkit.provisioning.kube
  - cloudkit.provisioning.controller.with_kube
attributes:
  check_mode:
    support: full
    description: Same as O(apply=false) - reports what would be removed, writes nothing.
  diff_mode:
    support: full
    description: Lists the objects, finalizers and jobs removed (or that would be) as before and after.
options:
  apply:
    description: Remove what was found. V(false) (the default) only reports.
    type: bool
    default: false
  api_group:
    description:
      - API group of the ComputeInstance CRD; the labels, finalizer and Lease names derive from it.
      - Can also be set with the E(CLOUDKIT_API_GROUP) environment variable.
    type: str
    default: cloudkit.openshift.io
  namespaces:
    description:
      - Namespaces to clean (VM objects, Leases, ComputeInstances); empty means all. ComputeInstances are always looked
        up in all namespaces, since an instance's VM objects live in its Tenant's namespace.
    type: list
    elements: str
    default: []
  templates:
    description:
      - The provision and deprovision job templates (or workflow job templates) whose active jobs are looked at.
    type: list
    elements: str
    default: [innabox-create-compute-instance, innabox-delete-compute-instance]
  organization:
    description: Organization of O(templates).
    type: str
  cancel_jobs:
    description: Also cancel active jobs of O(templates) whose ComputeInstance no longer exists.
    type: bool
    default: false
notes:
  - Listing is cluster-wide unless O(namespaces) is given; the credential needs list on ComputeInstances in all
    namespaces either way.
"""

EXAMPLES = r"""
- name: See what failed runs left behind
  cloudkit.provisioning.computeinstance_cleanup:
    controller_host: https://aap.example.com/api/controller
  register: leftovers

- name: Remove it, and cancel jobs of instances that are gone
  cloudkit.provisioning.computeinstance_cleanup:
    controller_host: https://aap.example.com/api/controller
    apply: true
    cancel_jobs: true
"""

RETURN = r"""
actions:
  description:
    - Each removal, found or made. C(action) is delete, remove_finalizer or cancel; C(target) the object (kind,
      namespace, name, uid); C(reason) and C(evidence) why; C(done) whether it was carried out, and C(outcome)
      what happened (planned, deleted, removed, cancel requested, or kept and why when a re-check refused it).
  returned: always
  type: list
  elements: dict
  sample:
    - action: delete
      target: {kind: VirtualMachine, namespace: tenant-acme, name: vm1, uid: 0c6f...}
      reason: its ComputeInstance vm1 (uid 5b0f...) no longer exists
      evidence: {instance_name: vm1, instance_uid: 5b0f..., namesakes: []}
      done: true
      outcome: deleted
kept:
  description: What was looked at and deliberately left alone, with the reason (C(target), C(reason), C(evidence)).
  returned: always
  type: list
  elements: dict
summary:
  description: Counts of planned and done actions and of kept items.
  returned: always
  type: dict
  sample: {planned: 3, done: 3, kept: 1}
apply:
  description: Whether removals were made (false for a dry run and in check mode).
  returned: always
  type: bool
holder:
  description: The Lease holder name this run used while removing a finalizer.
  returned: always
  type: str
  sample: run-cleanup-1a2b3c4d@jobhost
"""

import re

from ansible.module_utils.basic import env_fallback

from ansible_collections.cloudkit.provisioning.plugins.module_utils.aap import (
    ControllerError,
    client_from_kube_module_params,
    controller_argument_spec_with_kube,
)
from ansible_collections.cloudkit.provisioning.plugins.module_utils.cleanup import Cleanup, describe_ref
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_errors import KubeError
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_module import KubeModule
from ansible_collections.cloudkit.provisioning.plugins.module_utils.names import DEFAULT_API_GROUP


NAMESPACE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def _label(action):
    target = action["target"]
    if action["action"] == "remove_finalizer":
        return "{} finalizer {}".format(describe_ref(target), target["finalizer"])
    return describe_ref(target)


def main():
    argument_spec = {
        "apply": {"type": "bool", "default": False},
        "api_group": {"type": "str", "default": DEFAULT_API_GROUP, "fallback": (env_fallback, ["CLOUDKIT_API_GROUP"])},
        "namespaces": {"type": "list", "elements": "str", "default": []},
        "templates": {
            "type": "list",
            "elements": "str",
            "default": ["innabox-create-compute-instance", "innabox-delete-compute-instance"],
        },
        "organization": {"type": "str"},
        "cancel_jobs": {"type": "bool", "default": False},
    }
    argument_spec.update(controller_argument_spec_with_kube())
    module = KubeModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    names = module.names(params["api_group"])
    bad = [namespace for namespace in params["namespaces"] if not NAMESPACE_RE.match(namespace or "")]
    if bad:
        module.fail_json(
            msg="namespaces: {} {} not a namespace name (a DNS label such as tenant-acme)".format(
                ", ".join(repr(n) for n in bad), "is" if len(bad) == 1 else "are"
            )
        )
    if params["cancel_jobs"] and not params["controller_host"]:
        module.fail_json(msg="cancel_jobs needs controller_host: jobs are canceled in the controller")
    try:
        controller = client_from_kube_module_params(params)
    except ValueError as exc:
        module.fail_json(msg=f"controller_host: {exc}")
    apply = params["apply"] and not module.check_mode
    cleanup = Cleanup(
        module.client,
        names,
        controller=controller,
        controller_host=params["controller_host"],
        templates=params["templates"],
        organization=params["organization"],
        namespaces=params["namespaces"],
        cancel_jobs=params["cancel_jobs"],
        apply=apply,
    )
    try:
        report = cleanup.run()
    except KubeError as error:
        module.fail_api(error, "cannot look for leftovers", **cleanup.report())
    except ControllerError as error:
        module.fail_json(
            msg=f"cannot ask the controller about jobs: {error.message}", api_error=error.to_dict(), **cleanup.report()
        )
    for warning in report.pop("warnings"):  # what could not be checked: a template not found, an Event not recorded
        module.warn(warning)
    removed = [a for a in report["actions"] if a["done"]] if apply else report["actions"]
    result = dict(report, changed=bool(removed))
    if removed and module._diff:
        result["diff"] = {"before": "\n".join(sorted(_label(a) for a in removed)) + "\n", "after": ""}
    failed = [a for a in report["actions"] if apply and not a["done"] and a["outcome"].startswith("failed")]
    if failed:
        module.fail_json(
            msg=f"{len(failed)} removal(s) failed: {'; '.join(_label(a) + ': ' + a['outcome'] for a in failed)}",
            **result,
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
