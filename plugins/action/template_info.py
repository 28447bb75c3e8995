# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Action plugin of template_info: hands the module the controller's collection search paths."""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible.utils.collection_loader import AnsibleCollectionConfig


def collection_paths() -> list:
    """Where the controller looks for collections (the playbook's collections/ first): where template roles are."""
    try:
        return list(AnsibleCollectionConfig.collection_paths)
    except NotImplementedError:  # no collection finder in this process
        return []


class ActionModule(ActionBase):
    """Runs template_info with collection_paths defaulting to the controller's collection search paths."""

    def run(self, tmp=None, task_vars=None):
        """Fill in collection_paths, then run the module."""
        del tmp  # unused since Ansible 2.7
        result = super().run(task_vars=task_vars)
        module_args = dict(self._task.args)
        if not module_args.get("collection_paths"):
            module_args["collection_paths"] = collection_paths()
        result.update(
            self._execute_module(
                module_name="cloudkit.provisioning.template_info", module_args=module_args, task_vars=task_vars
            )
        )
        return result
