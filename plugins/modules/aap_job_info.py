#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Read one automation controller job, or find the active jobs of a template about one ComputeInstance."""

from __future__ import annotations

DOCUMENTATION = r"""
module: aap_job_info
short_description: Read an automation controller job, or find the active jobs about a ComputeInstance
version_added: 0.1.0
description:
  - Queries the automation controller REST API (directly, or through the AAP 2.5 platform gateway); never changes
    anything. M(cloudkit.provisioning.aap_job) launches and cancels.
  - With O(job_id), reads that job (or workflow job).
  - With O(name), lists the active (pending, waiting or running) jobs of that template that concern one
    ComputeInstance, recognised by its C(metadata.uid) (or name and namespace) in any extra-vars envelope the
    operator uses (C(ansible_eda.event.payload), C(osac_job_vars.resource), C(compute_instance)).
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
    description: The module only reads.
  diff_mode:
    support: N/A
    description: The module only reads.
options:
  job_id:
    description:
      - Id of the job (or workflow job) to read.
      - A job the controller does not know (never existed, or purged) fails the task with RV(api_error.status) 404.
    type: int
  name:
    description: Name of the job template (or workflow job template) whose active jobs about the instance are listed.
    type: str
  organization:
    description:
      - Organization of the template O(name) (C(summary_fields.organization.name)).
      - Without it, the template name must be unique on the controller.
    type: str
  template_type:
    description:
      - V(job) for a job template and its jobs (C(job_templates/), C(jobs/)).
      - V(workflow) for a workflow job template and its workflow jobs (C(workflow_job_templates/), C(workflow_jobs/)).
      - V(any), with O(name) only, looks for a job template of that name first, then for a workflow job template
        (the operator may launch either); each job found says its C(template_type).
    type: str
    choices: [job, workflow, any]
    default: job
  instance_uid:
    description: C(metadata.uid) of the ComputeInstance whose jobs O(name) lists.
    type: str
  payload:
    description:
      - Instead of O(instance_uid), the ComputeInstance (or extra vars holding it in any envelope).
        Its C(metadata.uid) is matched, or its name and namespace when it has no uid.
      - A JSON string is decoded first.
    type: raw
notes:
  - Exactly one of O(job_id) and O(name) is given; O(name) needs O(instance_uid) or O(payload).
"""

EXAMPLES = r"""
- name: Read a job
  cloudkit.provisioning.aap_job_info:
    controller_host: https://aap.example.com/api/controller
    controller_oauthtoken: "{{ aap_token }}"
    job_id: 7265
  register: provision

- name: Say how it ended
  ansible.builtin.debug:
    msg: "job {{ provision.job.id }} is {{ provision.job.state }}"

- name: Which jobs are still working on this instance?
  cloudkit.provisioning.aap_job_info:
    name: innabox-create-compute-instance
    organization: innabox
    template_type: any
    instance_uid: "{{ compute_instance.metadata.uid }}"
  register: running
"""

RETURN = r"""
job:
  description: The job O(job_id).
  returned: when O(job_id) is given
  type: dict
  contains:
    id:
      description: Id of the job.
      type: int
      sample: 7265
    type:
      description: V(job) or V(workflow_job).
      type: str
      sample: job
    url:
      description: Absolute URL of the job in the API.
      type: str
      sample: https://aap.example.com/api/controller/v2/jobs/7265/
    status:
      description: The controller's status (pending, waiting, running, successful, failed, error, canceled, ...).
      type: str
      sample: running
    state:
      description: The ComputeInstance job state the status maps to.
      type: str
      sample: Running
    job_failed:
      description: The controller's C(failed) flag of the job (true for failed, error and canceled).
      type: bool
      sample: false
    created:
      description: When the job was created.
      type: str
      sample: "2026-02-03T10:15:00.123456Z"
    started:
      description: When the job started running (null until then).
      type: str
      sample: "2026-02-03T10:15:01.123456Z"
    finished:
      description: When the job finished (null until then).
      type: str
      sample: "2026-02-03T10:17:31.654321Z"
    elapsed:
      description: Seconds from start to finish (0 until finished).
      type: float
      sample: 150.531
    job_explanation:
      description: The controller's explanation of the status, if any.
      type: str
      sample: ""
    result_traceback:
      description: The controller's traceback, when the job state is Failed.
      type: str
      sample: "Traceback (most recent call last): ..."
    launch_type:
      description: How the job was launched (manual, workflow, ...).
      type: str
      sample: manual
    template:
      description: Id and name of the job's template.
      type: dict
      sample: {"id": 12, "name": "innabox-create-compute-instance"}
    organization:
      description: Organization of the job's template.
      type: str
      sample: innabox
instance:
  description: The ComputeInstance whose jobs were listed.
  returned: when O(name) is given
  type: dict
  contains:
    uid:
      description: C(metadata.uid), null when matched by name.
      type: str
      sample: 5d3c0ab2-57c1-4a1e-9a54-8a1d8f1f7f10
    name:
      description: Name, when given by a payload.
      type: str
      sample: vm1
    namespace:
      description: Namespace, when given by a payload.
      type: str
      sample: tenants
template:
  description: The template O(name) as found.
  returned: when O(name) is given
  type: dict
  sample: {"id": 12, "name": "innabox-create-compute-instance", "type": "job_template", "organization": "innabox",
           "url": "https://aap.example.com/api/controller/v2/job_templates/12/"}
jobs:
  description:
    - The active jobs of O(name) about the instance, oldest first, each with the facts of RV(job), the envelope the
      instance was found in and the job's C(template_type).
  returned: when O(name) is given
  type: list
  elements: dict
  sample: [{"id": 7265, "status": "running", "state": "Running", "envelope": "ansible_eda.event.payload",
            "template_type": "job"}]
api_error:
  description: The controller's answer when a request failed.
  returned: on failure
  type: dict
  contains:
    status:
      description: HTTP status (null when there was no answer).
      type: int
      sample: 404
    url:
      description: URL of the failed request.
      type: str
      sample: https://aap.example.com/api/controller/v2/jobs/7265/
    method:
      description: HTTP method of the failed request.
      type: str
      sample: GET
    detail:
      description: The controller's explanation, if any.
      type: str
      sample: Not found.
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cloudkit.provisioning.plugins.module_utils.aap import (
    ControllerError,
    client_from_params,
    controller_argument_spec,
    template_facts,
)
from ansible_collections.cloudkit.provisioning.plugins.module_utils.envelope import EnvelopeError, identify


def read(module, client):
    kind = module.params["template_type"]
    module.exit_json(changed=False, job=client.describe(client.get_job(module.params["job_id"], kind), kind))


def find(module, client):
    params = module.params
    kind = params["template_type"]
    instance = {"uid": params["instance_uid"], "name": None, "namespace": None}
    if params["payload"] is not None:
        try:
            identity = identify(params["payload"])
        except EnvelopeError as exc:
            module.fail_json(msg=f"payload: {exc}")
        instance = {"uid": identity.uid, "name": identity.name, "namespace": identity.namespace}
    if kind == "any":
        template, kind = client.find_template_any(params["name"], params["organization"])
    else:
        template = client.find_template(params["name"], params["organization"], kind)
    jobs = []
    for job, identity in client.find_jobs(
        template, uid=instance["uid"], name=instance["name"], namespace=instance["namespace"], template_type=kind
    ):
        facts = client.describe(job, kind)
        facts.update(envelope=identity.source, template_type=kind)
        jobs.append(facts)
    module.exit_json(changed=False, instance=instance, template=template_facts(client, template, kind), jobs=jobs)


def main():
    argument_spec = controller_argument_spec()
    argument_spec.update(
        job_id={"type": "int"},
        name={"type": "str"},
        organization={"type": "str"},
        template_type={"type": "str", "choices": ["job", "workflow", "any"], "default": "job"},
        instance_uid={"type": "str"},
        payload={"type": "raw"},
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_one_of=[("job_id", "name")],
        mutually_exclusive=[("job_id", "name"), ("instance_uid", "payload"), ("job_id", "instance_uid"),
                            ("job_id", "payload")],
        supports_check_mode=True,
    )
    params = module.params
    if params["name"] is not None and params["instance_uid"] is None and params["payload"] is None:
        module.fail_json(msg="name: listing a template's jobs needs the instance: set instance_uid or payload")
    if params["job_id"] is not None and params["template_type"] == "any":
        module.fail_json(msg="template_type: any is for name; name the type of the job (job or workflow)")
    try:
        client = client_from_params(params)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    try:
        if params["job_id"] is not None:
            read(module, client)
        else:
            find(module, client)
    except ControllerError as error:
        what = (f"cannot read job {params['job_id']}" if params["job_id"] is not None
                else f"cannot list the jobs of {params['template_type']} template {params['name']!r}")
        module.fail_json(msg=f"{what}: {error.message}", api_error=error.to_dict())


if __name__ == "__main__":
    main()
