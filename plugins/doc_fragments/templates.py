# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Options that say which template roles can be selected, and where they are found."""

from __future__ import annotations


class ModuleDocFragment:
    """template_collections, allowed_templates, collection_paths (module_utils/templates.py)."""

    DOCUMENTATION = r"""
options:
  template_collections:
    description:
      - Collections whose template roles (roles with C(meta/cloudkit.yaml) saying C(template_type=compute_instance))
        can be selected. A template's id is C(<namespace>.<collection>.<role>).
    type: list
    elements: str
    default: [cloudkit.provisioning]
  allowed_templates:
    description:
      - Template ids that can be selected besides those of O(template_collections), each still a template role.
      - C(cloudkit.templates.ocp_virt_vm) and C(osac.templates.ocp_virt_vm) stand for
        C(cloudkit.provisioning.ocp_virt_vm).
    type: list
    elements: str
    default: []
  collection_paths:
    description:
      - Directories searched for template roles (each holding, or being, an C(ansible_collections) directory).
      - Filled in by the module's action plugin with the controller's collection search paths when not given.
    type: list
    elements: path
"""
