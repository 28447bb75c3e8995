#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Launch and cancel automation controller jobs, in the ComputeInstance job states."""

from __future__ import annotations

DOCUMENTATION = r"""
module: aap_job
short_description: Launch or cancel automation controller jobs
version_added: 0.1.0
description:
  - Talks to the automation controller REST API (directly, or through the AAP 2.5 platform gateway)
    the way the cloudkit operator does in AAP Direct mode.
  - V(launched) launches a job template or workflow job template by name and organization with extra
    vars, and optionally waits until the job is finished.
  - V(canceled) cancels a job; a job that has already finished (the controller answers 405) is reported,
    not a failure.
  - M(cloudkit.provisioning.aap_job_info) reads a job and finds the active jobs about a ComputeInstance.
  - Every job is reported with the controller's raw status and the ComputeInstance job state it maps to
    (successful -> Succeeded, failed and error -> Failed, canceled -> Canceled, pending -> Pending,
    waiting -> Waiting, running -> Running, anything else -> Unknown).
author:
  - cloudkit.provisioning contributors (@cloudkit)
extends_documentation_fragment:
  - cloudkit.provisioning.controller
attributes:
  check_mode:
    support: full
    description: V(launched) and V(canceled) only read and report what they would do.
  diff_mode:
    support: none
    description: Jobs have no diff.
options:
  state:
    description:
      - V(launched) launches O(name) and returns the new job.
      - V(canceled) cancels O(job_id).
    type: str
    choices: [launched, canceled]
    default: launched
  name:
    description: Name of the job template (or workflow job template). Required for V(launched).
    type: str
  organization:
    description:
      - Organization of the template (C(summary_fields.organization.name)).
      - Without it, the template name must be unique on the controller.
    type: str
  template_type:
    description:
      - V(job) for a job template and its jobs (C(job_templates/), C(jobs/)).
      - V(workflow) for a workflow job template and its workflow jobs (C(workflow_job_templates/), C(workflow_jobs/)).
    type: str
    choices: [job, workflow]
    default: job
  extra_vars:
    description:
      - Extra vars of the launch. The template must prompt for variables on launch, else the
        module fails before launching (the controller would silently drop them).
    type: dict
  job_id:
    description: Id of the job (or workflow job) for V(canceled).
    type: int
  wait:
    description:
      - Wait until the job is finished (successful, failed, error or canceled).
      - With V(launched), a job that does not succeed fails the task (with every fact returned).
      - With V(canceled), the task waits for the job to stop; tasks already running may finish first.
    type: bool
    default: false
  timeout:
    description: Seconds to wait with O(wait); the task fails when the job is still not finished.
    type: int
    default: 600
  interval:
    description: Seconds before the first poll with O(wait); each next poll waits half as long again, up to 10 seconds.
    type: float
    default: 1.0
"""

EXAMPLES = r"""
- name: Provision through the controller, as the operator does in AAP Direct mode
  cloudkit.provisioning.aap_job:
    controller_host: https://aap.example.com/api/controller
    controller_oauthtoken: "{{ aap_token }}"
    name: innabox-create-compute-instance
    organization: innabox
    extra_vars:
      ansible_eda:
        event:
          payload: "{{ compute_instance }}"
    wait: true
    timeout: 1800
  register: provision

- name: Which jobs are still working on this instance?
  cloudkit.provisioning.aap_job_info:
    name: innabox-create-compute-instance
    organization: innabox
    instance_uid: "{{ compute_instance.metadata.uid }}"
  register: running

- name: Cancel them, and wait until they stopped
  cloudkit.provisioning.aap_job:
    state: canceled
    job_id: "{{ item.id }}"
    wait: true
  loop: "{{ running.jobs }}"
"""

RETURN = r"""
id:
  description: Id of the job (null for V(launched) in check mode).
  returned: always
  type: int
  sample: 7265
type:
  description: V(job) or V(workflow_job).
  returned: except for V(launched) in check mode
  type: str
  sample: job
url:
  description: Absolute URL of the job in the API.
  returned: except for V(launched) in check mode
  type: str
  sample: https://aap.example.com/api/controller/v2/jobs/7265/
status:
  description: The controller's status (pending, waiting, running, successful, failed, error, canceled, ...).
  returned: except for V(launched) in check mode
  type: str
  sample: running
state:
  description: The ComputeInstance job state the status maps to.
  returned: except for V(launched) in check mode
  type: str
  sample: Running
job_failed:
  description: The controller's C(failed) flag of the job (true for failed, error and canceled).
  returned: except for V(launched) in check mode
  type: bool
  sample: false
created:
  description: When the job was created.
  returned: except for V(launched) in check mode
  type: str
  sample: "2026-02-03T10:15:00.123456Z"
started:
  description: When the job started running (null until then).
  returned: except for V(launched) in check mode
  type: str
  sample: "2026-02-03T10:15:01.123456Z"
finished:
  description: When the job finished (null until then).
  returned: except for V(launched) in check mode
  type: str
  sample: "2026-02-03T10:17:31.654321Z"
elapsed:
  description: Seconds from start to finish (0 until finished).
  returned: except for V(launched) in check mode
  type: float
  sample: 150.531
job_explanation:
  description: The controller's explanation of the status, if any.
  returned: except for V(launched) in check mode
  type: str
  sample: ""
result_traceback:
  description: The controller's traceback of a failed job.
  returned: when the job state is Failed
  type: str
  sample: "Traceback (most recent call last): ..."
launch_type:
  description: How the job was launched (manual, workflow, ...).
  returned: except for V(launched) in check mode
  type: str
  sample: manual
template:
  description: The template the job (or, for V(launched) in check mode, the launch) belongs to.
  returned: always
  type: dict
  contains:
    id:
      description: Template id.
      type: int
      sample: 12
    name:
      description: Template name.
      type: str
      sample: innabox-create-compute-instance
organization:
  description: Organization of the job's template.
  returned: except for V(launched) in check mode
  type: str
  sample: innabox
ignored_fields:
  description: Launch fields the controller reported as ignored.
  returned: when O(state=launched) and not in check mode
  type: dict
  sample: {}
cancel_requested:
  description: Whether a cancel was sent (or, in check mode, would be).
  returned: when O(state=canceled)
  type: bool
  sample: true
already_finished:
  description: Whether the job had already finished, so there was nothing to cancel (the controller's 405).
  returned: when O(state=canceled)
  type: bool
  sample: false
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cloudkit.provisioning.plugins.module_utils.aap import (
    TERMINAL_STATUSES,
    ControllerError,
    JobTimeout,
    client_from_params,
    controller_argument_spec,
    template_facts,
)


def fail(module, client, error, action, **result):
    """Fail with the controller's answer; messages never hold credentials (the client redacts them)."""
    if isinstance(error, JobTimeout) and error.job:
        result.update(client.describe(error.job, module.params["template_type"]))
    module.fail_json(msg=f"{action}: {error.message}", api_error=error.to_dict(), **result)


def launched(module, client):
    params = module.params
    kind = params["template_type"]
    template = client.find_template(params["name"], params["organization"], kind)
    facts = {"template": template_facts(client, template, kind)}
    if module.check_mode:
        module.exit_json(
            changed=True, id=None, msg="would launch {} {}".format(template.get("type"), template.get("name")), **facts
        )
    job = client.launch(template, params["extra_vars"], kind)
    facts["ignored_fields"] = job.get("ignored_fields") or {}
    if params["wait"]:
        try:
            job = client.wait(job["id"], kind, timeout=params["timeout"], interval=params["interval"])
        except ControllerError as error:
            fail(
                module,
                client,
                error,
                "job {} was launched but cannot be followed".format(job["id"]),
                changed=True,
                **facts,
            )
    facts.update(client.describe(job, kind))
    if params["wait"] and facts["state"] != "Succeeded":
        module.fail_json(
            msg="job {} of {} ended {}".format(facts["id"], template.get("name"), facts["status"]),
            changed=True,
            **facts,
        )
    module.exit_json(changed=True, **facts)


def canceled(module, client):
    params = module.params
    kind = params["template_type"]
    if module.check_mode:
        job = client.get_job(params["job_id"], kind)
        active = job.get("status") not in TERMINAL_STATUSES
        module.exit_json(
            changed=active, cancel_requested=active, already_finished=not active, **client.describe(job, kind)
        )
    # POST first: asking is what decides, and a 405 is the controller saying the job is already done.
    requested = client.cancel(params["job_id"], kind)
    if params["wait"]:
        job = client.wait(params["job_id"], kind, timeout=params["timeout"], interval=params["interval"])
    else:
        job = client.get_job(params["job_id"], kind)
    module.exit_json(
        changed=requested, cancel_requested=requested, already_finished=not requested, **client.describe(job, kind)
    )


ACTIONS = {"launched": launched, "canceled": canceled}
# What failed, for the message of a ControllerError.
WHAT = {
    "launched": "cannot launch %(template_type)s template %(name)r",
    "canceled": "cannot cancel job %(job_id)s",
}


def main():
    argument_spec = controller_argument_spec()
    argument_spec.update(
        state={"type": "str", "choices": list(ACTIONS), "default": "launched"},
        name={"type": "str"},
        organization={"type": "str"},
        template_type={"type": "str", "choices": ["job", "workflow"], "default": "job"},
        extra_vars={"type": "dict"},
        job_id={"type": "int"},
        wait={"type": "bool", "default": False},
        timeout={"type": "int", "default": 600},
        interval={"type": "float", "default": 1.0},
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_if=[
            ("state", "launched", ("name",)),
            ("state", "canceled", ("job_id",)),
        ],
        supports_check_mode=True,
    )
    try:
        client = client_from_params(module.params)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    state = module.params["state"]
    try:
        ACTIONS[state](module, client)
    except ControllerError as error:
        fail(module, client, error, WHAT[state] % module.params)


if __name__ == "__main__":
    main()
