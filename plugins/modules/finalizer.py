#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Add or remove one finalizer on any Kubernetes object, conflict-safely."""

from __future__ import annotations

DOCUMENTATION = r"""
module: finalizer
short_description: Add or remove one finalizer on a Kubernetes object without losing anyone else's
version_added: 0.1.0
description:
  - Ensures one finalizer is present on, or absent from, any Kubernetes object.
  - Writes a JSON patch on C(/metadata/finalizers) guarded by a C(test) of what the decision was based
    on, so a finalizer added or removed by another writer in between is never lost. On a conflict the
    object is read again and the decision retried, a bounded number of times with jitter.
  - JSON patch also avoids the 422 that some CRD versions return for metadata-only merge patches.
author:
  - cloudkit.provisioning contributors (@cloudkit)
extends_documentation_fragment:
  - cloudkit.provisioning.kube
attributes:
  check_mode:
    support: full
    description: Reports what would change without writing.
  diff_mode:
    support: full
    description: Shows the finalizer list before and after.
options:
  api_version:
    description: apiVersion of the object, for example C(v1) or C(cloudkit.openshift.io/v1alpha1).
    type: str
    required: true
  kind:
    description: Kind of the object, for example C(ComputeInstance).
    type: str
    required: true
  name:
    description: Name of the object.
    type: str
    required: true
  namespace:
    description: Namespace of the object; required for namespaced kinds.
    type: str
  finalizer:
    description: The finalizer, for example C(cloudkit.openshift.io/computeinstance-aap).
    type: str
    required: true
  state:
    description:
      - V(present) adds the finalizer; the object must exist and must not be being deleted
        (the API refuses new finalizers once an object has a deletionTimestamp).
      - V(absent) removes it; a missing object counts as done.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Own the instance before provisioning it
  cloudkit.provisioning.finalizer:
    api_version: cloudkit.openshift.io/v1alpha1
    kind: ComputeInstance
    name: vm1
    namespace: tenants
    finalizer: cloudkit.openshift.io/computeinstance-aap

- name: Let the instance go once everything is deprovisioned
  cloudkit.provisioning.finalizer:
    api_version: cloudkit.openshift.io/v1alpha1
    kind: ComputeInstance
    name: vm1
    namespace: tenants
    finalizer: cloudkit.openshift.io/computeinstance-aap
    state: absent
"""

RETURN = r"""
exists:
  description: Whether the object exists (false only for O(state=absent) on a missing object).
  returned: always
  type: bool
  sample: true
finalizers:
  description: The object's finalizers after the change (predicted in check mode).
  returned: always
  type: list
  elements: str
  sample: [cloudkit.openshift.io/computeinstance, cloudkit.openshift.io/computeinstance-aap]
resource_version:
  description: metadata.resourceVersion after the change, null when the object does not exist.
  returned: always
  type: str
  sample: "48213"
"""

from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_errors import KubeError
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_module import KubeModule
from ansible_collections.cloudkit.provisioning.plugins.module_utils.metadata import BeingDeleted, set_finalizer


def main():
    module = KubeModule(
        argument_spec={
            "api_version": {"type": "str", "required": True},
            "kind": {"type": "str", "required": True},
            "name": {"type": "str", "required": True},
            "namespace": {"type": "str"},
            "finalizer": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        },
        supports_check_mode=True,
    )
    params = module.params
    client = module.client
    target = "{} {}".format(params["kind"], "/".join(p for p in (params["namespace"], params["name"]) if p))
    try:
        resource = client.resource(params["api_version"], params["kind"])
        result = set_finalizer(client, resource, params["name"], params["namespace"], params["finalizer"],
                               params["state"] == "present", check_mode=module.check_mode)
    except BeingDeleted as exc:
        module.fail_json(msg=str(exc), exists=True)
    except KubeError as error:
        module.fail_api(
            error,
            "cannot {} finalizer {} on {}".format(
                "add" if params["state"] == "present" else "remove", params["finalizer"], target
            ),
        )
    before = result.pop("before")
    result.pop("live")  # the whole object: not this module's business to return
    if result["changed"] and module._diff:
        result["diff"] = {"before": {"finalizers": before}, "after": {"finalizers": result["finalizers"]}}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
