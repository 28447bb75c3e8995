#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Publish ComputeInstance templates to the fulfillment service, so tenants can pick one."""

from __future__ import annotations

DOCUMENTATION = r"""
module: template_publish
short_description: Publish ComputeInstance templates to the fulfillment service
version_added: 0.1.0
description:
  - Makes the fulfillment service's C(/api/private/v1/compute_instance_templates) list hold each of O(templates);
    one it lacks is created (C(POST)), one whose C(title), C(description) or C(parameters) differ is updated
    (C(PATCH .../<id>)), and one that is the same is left alone, so publishing twice changes nothing the second time.
  - Templates the service lists that are not in O(templates) are left alone.
  - O(templates) are usually the C(published) entries of the templates M(cloudkit.provisioning.template_info)
    lists (playbook C(cloudkit.provisioning.publish_templates)).
author:
  - cloudkit.provisioning contributors (@cloudkit)
attributes:
  check_mode:
    support: full
    description: Lists the service's templates and reports what would be created or updated, writing nothing.
  diff_mode:
    support: full
    description: Shows each created or updated template before and after.
options:
  url:
    description: Base URL of the fulfillment service, for example C(https://fulfillment.example.com).
    type: str
    required: true
    aliases: [fulfillment_url]
  token:
    description: Bearer token of the service.
    type: str
    aliases: [fulfillment_token]
  ca_path:
    description: A PEM file of the CA certificates that verify the service's TLS certificate; default is the system's.
    type: path
  validate_certs:
    description: Verify the service's TLS certificate. Turn off only for a test service.
    type: bool
    default: true
  timeout:
    description: Seconds each request may take.
    type: int
    default: 30
  templates:
    description:
      - The templates, each C({id, title, description, parameters}) with parameters
        C({name, title, description, required, type, default}) as the service takes them.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: List the templates
  cloudkit.provisioning.template_info:
    template_collections: [cloudkit.provisioning, acme.templates]
  register: catalogue

- name: Publish them
  cloudkit.provisioning.template_publish:
    url: https://fulfillment.example.com
    token: "{{ fulfillment_token }}"
    ca_path: /etc/pki/fulfillment-ca.pem
    templates: "{{ catalogue.templates | map(attribute='published') | list }}"
"""

RETURN = r"""
created:
  description: Ids of the templates created (or that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: [acme.templates.small_vm]
updated:
  description: Ids of the templates updated because they differed.
  returned: always
  type: list
  elements: str
unchanged:
  description: Ids of the templates the service already had as they are.
  returned: always
  type: list
  elements: str
  sample: [cloudkit.provisioning.ocp_virt_vm]
status:
  description: HTTP status of the request that failed.
  returned: on failure, when the service answered
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cloudkit.provisioning.plugins.module_utils.fulfillment import (
    FulfillmentClient,
    FulfillmentError,
    publish,
)


def main():
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "required": True, "aliases": ["fulfillment_url"]},
            "token": {"type": "str", "no_log": True, "aliases": ["fulfillment_token"]},
            "ca_path": {"type": "path"},
            "validate_certs": {"type": "bool", "default": True},
            "timeout": {"type": "int", "default": 30},
            "templates": {"type": "list", "elements": "dict", "required": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    problems = [
        f"templates[{index}] has no id"
        for index, template in enumerate(params["templates"])
        if not template.get("id")
    ]
    if problems:
        module.fail_json(msg="; ".join(problems))
    client = FulfillmentClient(
        params["url"], params["token"], params["ca_path"], params["validate_certs"], params["timeout"]
    )
    try:
        result = publish(client, params["templates"], module.check_mode)
    except FulfillmentError as error:
        module.fail_json(msg=f"cannot publish the templates: {error}", status=error.status)
    diff = result.pop("diff")
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
