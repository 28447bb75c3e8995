#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Read the live ComputeInstance a job is about, with every fact derived from it."""

from __future__ import annotations

DOCUMENTATION = r"""
module: computeinstance_info
short_description: Read the live ComputeInstance and decide what it needs
version_added: 0.1.0
description:
  - Finds which ComputeInstance a job is about, from its name and namespace or from the extra vars
    exactly as the job received them (any envelope the operator uses), and reads the LIVE object.
    The payload is only a hint of which instance, never trusted for its content.
  - Returns the object with the facts the playbooks need, derived in one place (all contract names,
    the desired and reconciled config versions, deletion and management state, whether our finalizer
    is present, the action the instance needs now, the validated template and VM parameters, and the
    namespace its VM objects live in, through its Tenant).
  - A missing instance is a normal result (RV(exists=false)), not an error.
  - With neither O(name) nor O(payload), the payload is the job's envelope variables C(ansible_eda),
    C(osac_job_vars) and C(compute_instance) exactly as received, never rendered as templates. Prefer this in
    jobs, because a templated O(payload) (a Jinja expression naming those variables) renders every string of
    the instance, so Jinja that a user wrote into its fields would run on the job host.
author:
  - cloudkit.provisioning contributors (@cloudkit)
extends_documentation_fragment:
  - cloudkit.provisioning.kube
  - cloudkit.provisioning.instance
  - cloudkit.provisioning.templates
attributes:
  check_mode:
    support: full
    description: Only reads.
  diff_mode:
    support: none
    description: Nothing is written.
options:
  purpose:
    description:
      - What the caller is about to do; it decides which problems fail the task.
      - V(info) never fails on the instance's content; problems are returned as facts.
      - V(provision) fails when the template is not allowed, a VM parameter is invalid, or the
        Tenant (C(status.tenantReference) -> Tenant C(status.namespace)) cannot be resolved.
      - V(deprovision) never needs the Tenant; when it is gone, the namespace falls back to
        C(status.virtualMachineReference.namespace), then to wherever objects carry the instance's labels.
    type: str
    choices: [info, provision, deprovision]
    default: info
"""

EXAMPLES = r"""
- name: Read the instance this job was launched for (EDA, AAP Direct or a hand run), from its extra vars untemplated
  cloudkit.provisioning.computeinstance_info:
    purpose: provision
  register: instance

- name: Skip instances the operator marked manual or unmanaged
  ansible.builtin.meta: end_play
  when: not instance.managed

- name: Read one by name
  cloudkit.provisioning.computeinstance_info:
    name: vm1
    namespace: tenants
    api_group: osac.openshift.io
"""

RETURN = r"""
exists:
  description: Whether the ComputeInstance exists.
  returned: always
  type: bool
  sample: true
identity:
  description: Which instance was asked for, and from which envelope.
  returned: always
  type: dict
  sample: {name: vm1, namespace: tenants, uid: 5b0f..., api_group: cloudkit.openshift.io,
           source: ansible_eda.event.payload}
instance:
  description: The live object.
  returned: when RV(exists)
  type: dict
names:
  description: Every contract name for the API group in use (finalizer, annotations, labels, ...).
  returned: always
  type: dict
  sample: {finalizer: cloudkit.openshift.io/computeinstance-aap,
           reconciled_config_version_annotation: cloudkit.openshift.io/reconciled-config-version}
labels:
  description: The labels every object made for the instance carries (its name and uid).
  returned: when RV(exists)
  type: dict
  sample: {cloudkit.openshift.io/computeinstance: vm1, cloudkit.openshift.io/computeinstance-uuid: 5b0f...}
label_selector:
  description: The label selector that finds every object made for the instance.
  returned: when RV(exists)
  type: str
  sample: cloudkit.openshift.io/computeinstance-uuid=5b0f...
api_group:
  description: The API group in use.
  returned: always
  type: str
  sample: cloudkit.openshift.io
uid:
  description: metadata.uid of the live object.
  returned: when RV(exists)
  type: str
generation:
  description: metadata.generation of the live object.
  returned: when RV(exists)
  type: int
resource_version:
  description: metadata.resourceVersion of the live object.
  returned: when RV(exists)
  type: str
desired_config_version:
  description: status.desiredConfigVersion, computed by the operator; null when not set yet.
  returned: when RV(exists)
  type: str
  sample: 9f3c2a61d0e4b7a8
reconciled_config_version:
  description: The C(<group>/reconciled-config-version) annotation; null when absent.
  returned: when RV(exists)
  type: str
deleting:
  description: Whether the instance has a deletionTimestamp.
  returned: when RV(exists)
  type: bool
deletion_timestamp:
  description: metadata.deletionTimestamp, or null.
  returned: when RV(exists)
  type: str
management_state:
  description: The C(<group>/management-state) annotation, or null.
  returned: when RV(exists)
  type: str
managed:
  description: False when the management state is C(manual) or C(unmanaged) (do not touch).
  returned: always
  type: bool
finalizer_present:
  description: Whether the C(<group>/computeinstance-aap) finalizer is present.
  returned: when RV(exists)
  type: bool
action:
  description: What the instance needs now.
  returned: always
  type: str
  sample: provision
  choices: [provision, deprovision, none]
action_reason:
  description: Why.
  returned: always
  type: str
  sample: desired config version 9f3c2a61d0e4b7a8, reconciled none
template_id:
  description: spec.templateID.
  returned: when RV(exists)
  type: str
template_allowed:
  description: Whether spec.templateID selects a template role of O(template_collections) or O(allowed_templates).
  returned: when RV(exists)
  type: bool
template:
  description:
    - The selected template's catalogue entry (as M(cloudkit.provisioning.template_info) lists it); null when none.
  returned: when RV(exists)
  type: dict
  sample: {id: cloudkit.provisioning.ocp_virt_vm, title: OpenShift Virtualization VM, type: compute_instance}
template_parameters:
  description:
    - spec.templateParameters validated by the template's argument specs, with their defaults; null when invalid.
    - The create and delete jobs pass each as a role variable of that name to the template role.
  returned: when RV(exists)
  type: dict
  sample: {cpu_cores: 2, memory: 2Gi}
parameters:
  description:
    - For the built-in template, the validated VM parameters (typed spec fields over templateParameters over defaults);
      null when invalid or for other templates.
  returned: when RV(exists)
  type: dict
  sample: {cores: 2, memory: 2Gi, disk_size: 10Gi, image: quay.io/containerdisks/fedora:40,
           exposed_ports: [{port: 22, protocol: TCP}]}
problems:
  description: Everything wrong with the template, the parameters or the Tenant, each naming its field.
  returned: when RV(exists)
  type: list
  elements: str
target_namespace:
  description: Where the instance's VM objects live; null when it cannot be resolved.
  returned: when RV(exists)
  type: str
target_namespace_source:
  description: How RV(target_namespace) was found.
  returned: when RV(exists)
  type: str
  choices: [tenant, virtualMachineReference, labels]
"""

from ansible_collections.cloudkit.provisioning.plugins.module_utils.computeinstance import (
    DEFAULT_ALLOWED_TEMPLATES,
    ComputeInstance,
    assess,
)
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_errors import KubeError
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_module import (
    INSTANCE_CONSTRAINTS,
    INSTANCE_SPEC,
    KubeModule,
)
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_resources import contract_resources
from ansible_collections.cloudkit.provisioning.plugins.module_utils.templates import (
    TEMPLATE_ARGUMENT_SPEC,
    assess_template,
)


def main():
    argument_spec = {
        "purpose": {"type": "str", "choices": ["info", "provision", "deprovision"], "default": "info"},
    }
    argument_spec.update(TEMPLATE_ARGUMENT_SPEC)
    argument_spec.update(INSTANCE_SPEC)
    module = KubeModule(argument_spec=argument_spec, supports_check_mode=True, **INSTANCE_CONSTRAINTS)
    params = module.params
    identity_facts, names = module.identify_instance()
    tenant_resource = contract_resources(names)[1]
    client = module.client
    vm_resource = client.resource("kubevirt.io/v1", "VirtualMachine")
    result = {"changed": False, "identity": identity_facts, "names": names.as_dict(), "api_group": names.api_group}
    live, gone = module.read_instance(identity_facts, names)
    if live is None:
        module.exit_json(exists=False, managed=True, action="none", action_reason=gone, **result)

    instance = ComputeInstance(live, names)
    result.update(instance.facts())
    result.update(exists=True, instance=live)
    # Which template role, and its parameters by its argument specs: refused here, before any write, naming the field.
    selection = assess_template(
        instance.spec, params["collection_paths"] or [], params["template_collections"], params["allowed_templates"]
    )
    try:
        facts = assess(
            client,
            instance,
            tenant_resource,
            vm_resource,
            DEFAULT_ALLOWED_TEMPLATES,
            params["purpose"] == "deprovision",
            builtin=selection["builtin"],
        )
    except KubeError as error:
        module.fail_api(error, f"cannot resolve the namespace of ComputeInstance {instance.namespace}/{instance.name}")
    problems = list(selection["problems"])
    if selection["builtin"]:
        # The built-in's own checks name every bad field more precisely; the argument specs' findings then add nothing.
        problems = facts["problems"] + (problems if facts["parameters"] is not None else [])
    else:
        problems.extend(facts["problems"])
    facts.update(
        template=selection["template"],
        template_allowed=selection["template_allowed"],
        template_parameters=selection["template_parameters"],
        problems=problems,
    )
    result.update(facts)
    if params["purpose"] == "provision" and result["problems"]:
        module.fail_json(
            msg="ComputeInstance {}/{} cannot be provisioned: {}".format(
                instance.namespace, instance.name, "; ".join(result["problems"])
            ),
            **result,
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
