#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""List the ComputeInstance templates a spec.templateID can select, with their parameters."""

from __future__ import annotations

DOCUMENTATION = r"""
module: template_info
short_description: List the ComputeInstance templates that can be selected, with their parameters
version_added: 0.1.0
description:
  - A template is a role with C(meta/cloudkit.yaml) saying C(template_type=compute_instance) (with its C(title) and
    C(description)); its id is C(<namespace>.<collection>.<role>) and its parameters are the options of its
    C(meta/argument_specs.yml) entry point C(create) (else C(main)).
  - Lists the templates of O(template_collections) and those named by O(allowed_templates), which is what the create
    and delete jobs of role C(cloudkit.provisioning.compute_instance) may run. Roles that are not templates are
    skipped; cluster templates (C(template_type=cluster)) too. An id of O(allowed_templates) that is no template role
    fails the task.
  - RV(templates[].published) is each template in the shape the fulfillment service's
    C(/api/private/v1/compute_instance_templates) endpoint takes (playbook C(cloudkit.provisioning.publish_templates)).
author:
  - cloudkit.provisioning contributors (@cloudkit)
extends_documentation_fragment:
  - cloudkit.provisioning.templates
attributes:
  check_mode:
    support: full
    description: Only reads.
  diff_mode:
    support: none
    description: Nothing is written.
"""

EXAMPLES = r"""
- name: List the templates of this collection and of acme.templates
  cloudkit.provisioning.template_info:
    template_collections: [cloudkit.provisioning, acme.templates]
  register: catalogue

- name: Show their ids
  ansible.builtin.debug:
    msg: "{{ catalogue.templates | map(attribute='id') | list }}"
"""

RETURN = r"""
templates:
  description: The templates, sorted by id.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: The template id, C(<namespace>.<collection>.<role>), what C(spec.templateID) names.
      type: str
      sample: cloudkit.provisioning.ocp_virt_vm
    title:
      description: C(title) of C(meta/cloudkit.yaml) (the id when unset).
      type: str
    description:
      description: C(description) of C(meta/cloudkit.yaml).
      type: str
    type:
      description: C(template_type) of C(meta/cloudkit.yaml), always V(compute_instance).
      type: str
    path:
      description: Directory of the role.
      type: str
    entry_point:
      description: The argument specs entry point the parameters come from.
      type: str
      sample: create
    parameters:
      description: The parameters, from the role's argument specs, sorted by name.
      type: list
      elements: dict
      contains:
        name:
          description: The option's name, the key in C(spec.templateParameters).
          type: str
        title:
          description: The option's C(short_description) (its name when unset).
          type: str
        description:
          description: The option's description, lines joined.
          type: str
        required:
          description: Whether the option is required.
          type: bool
        type:
          description: The option's argument spec type.
          type: str
        default:
          description: The option's default, or null.
          type: raw
        choices:
          description: The allowed values, when the option lists them.
          type: list
          returned: when the option has choices
        elements:
          description: The type of list elements, when set.
          type: str
          returned: when the option has elements
    published:
      description: The template as the fulfillment service takes it (parameter types as protobuf type URLs).
      type: dict
      sample:
        id: cloudkit.provisioning.ocp_virt_vm
        title: OpenShift Virtualization VM
        description: A KubeVirt virtual machine ...
        parameters:
          - name: cpu_cores
            title: CPU cores
            description: Number of virtual CPU cores, 1 to 256.
            required: false
            type: type.googleapis.com/google.protobuf.Int64Value
            default: {"@type": type.googleapis.com/google.protobuf.Int64Value, value: 2}
problems:
  description: Ids of O(allowed_templates) that are not template roles, or templates that cannot be read.
  returned: on failure
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cloudkit.provisioning.plugins.module_utils.templates import (
    TEMPLATE_ARGUMENT_SPEC,
    catalogue,
    published,
)


def main():
    module = AnsibleModule(argument_spec=dict(TEMPLATE_ARGUMENT_SPEC), supports_check_mode=True)
    params = module.params
    templates, problems = catalogue(
        params["collection_paths"] or [], params["template_collections"], params["allowed_templates"]
    )
    listed = [dict(template.as_dict(), published=published(template)) for template in templates]
    if problems:
        module.fail_json(msg="; ".join(problems), templates=listed, problems=problems)
    module.exit_json(changed=False, templates=listed)


if __name__ == "__main__":
    main()
