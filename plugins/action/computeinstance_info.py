# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Action plugin of computeinstance_info: hands the module the job's envelopes as received, never templated.

The ComputeInstance in the extra vars carries text its users wrote (spec.templateParameters,
cloud-init, annotations). Ansible renders any string of a variable that contains "{{" or "{%"
when the variable is templated, so a module argument such as
payload: "{{ ansible_eda }}" would run whatever Jinja (lookup('pipe', ...)) the payload holds,
on the job host, with the job's credentials. With neither name nor payload given, this plugin
reads the envelope variables straight from the task's variables and passes them on untouched.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.cloudkit.provisioning.plugins.action.template_info import collection_paths

# The extra vars that may deliver the instance (module_utils/envelope.py knows their inner shape).
ENVELOPE_VARIABLES = ("ansible_eda", "osac_job_vars", "compute_instance")


class ActionModule(ActionBase):
    """Runs computeinstance_info; without name and payload, payload is the job's envelope variables."""

    def run(self, tmp=None, task_vars=None):
        """Fill in payload from the raw task variables when the task names no instance, then run the module."""
        del tmp  # unused since Ansible 2.7
        task_vars = task_vars or {}
        result = super().run(task_vars=task_vars)
        module_args = dict(self._task.args)
        if module_args.get("name") is None and module_args.get("payload") is None:
            module_args["payload"] = dict((key, task_vars.get(key)) for key in ENVELOPE_VARIABLES)
        if not module_args.get("collection_paths"):
            # Template roles are found where the controller finds collections.
            module_args["collection_paths"] = collection_paths()
        result.update(
            self._execute_module(
                module_name="cloudkit.provisioning.computeinstance_info", module_args=module_args, task_vars=task_vars
            )
        )
        return result
