#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Where the time of ComputeInstance provisions and deprovisions went, phase by phase."""

from __future__ import annotations

DOCUMENTATION = r"""
module: computeinstance_latency_info
short_description: Break the time of ComputeInstance provisions and deprovisions down by phase
version_added: 0.1.0
description:
  - For one ComputeInstance (O(name) and O(namespace)) or those matching O(label_selector), and the runs in a time
    window (O(since), O(before)), joins three sources into one duration per phase and run
    - the instance's own timestamps (C(creationTimestamp); a later spec change from C(managedFields);
      C(deletionTimestamp)),
    - the automation controller's records of the provision and deprovision jobs (created, started, finished), for jobs
      launched by EDA (ansible-rulebook's C(run_job_template)) and by the operator directly (AAP Direct) alike,
    - the phase Events the jobs of this collection record on the instance (C(reportingComponent=cloudkit-provisioning)).
  - "Provision phases: queue (request to job created), launch (created to started), job startup (started to the lock
    wait), lock wait, VM apply, import (DataVolumes), boot (to VM Ready), bookkeeping (Ready to status written),
    operator observed (our status write to the operator's next status write). Deprovision phases: queue
    (deletionTimestamp to job created), launch, job startup, lock wait, VM delete, bookkeeping (to the finalizer
    removed)."
  - A run whose sources are incomplete (a job by an older version of this collection, a hand run without a controller,
    expired Events, an instance never provisioned) is reported with the phases that can be known; in RV(runs),
    C(missing) names the others and C(missing_why) says why.
  - Per run, C(slowest) in RV(runs) names the slowest phase; RV(summary) gives p50 and p95 per phase over the runs of
    each kind and mode, and the slowest phase by p50.
  - Reads only. Uses the same credentials as the jobs (list ComputeInstances and Events; the controller's job list).
author:
  - cloudkit.provisioning contributors (@cloudkit)
extends_documentation_fragment:
  - cloudkit.provisioning.kube
  - cloudkit.provisioning.controller.with_kube
attributes:
  check_mode:
    support: full
    description: Reads only; the same in check mode.
  diff_mode:
    support: none
    description: Nothing is written.
options:
  name:
    description: Name of one ComputeInstance, with O(namespace). A deleted instance is still found by its Events.
    type: str
  namespace:
    description:
      - Namespace of the instance, or of those matching O(label_selector) (all namespaces when unset).
      - With neither O(name) nor O(label_selector), every instance of the namespace, the deleted ones included (their
        Events outlive them).
    type: str
  label_selector:
    description: Label selector of the instances to report on, instead of O(name).
    type: str
  since:
    description:
      - Start of the window, an RFC 3339 time or a duration before now (V(90s), V(30m), V(2h), V(7d)). Runs that
        ended before it are left out, and only controller jobs created since are read.
    type: str
    default: 24h
  before:
    description: End of the window, as O(since); unset means now. Runs that began after it are left out.
    type: str
  provision_template:
    description: The provision job template (or workflow job template) whose jobs are read from the controller.
    type: str
    default: innabox-create-compute-instance
  deprovision_template:
    description: The deprovision job template (or workflow job template).
    type: str
    default: innabox-delete-compute-instance
  organization:
    description: Organization of the templates.
    type: str
  api_group:
    description:
      - API group of the ComputeInstance CRD.
      - Can also be set with the E(CLOUDKIT_API_GROUP) environment variable.
    type: str
    default: cloudkit.openshift.io
notes:
  - Without O(controller_host) the queue, launch and job startup phases are unknown (the controller holds those times).
  - Kubernetes keeps Events for an hour by default (kube-apiserver C(--event-ttl)); runs older than that lose the phases
    only the Events record.
  - Times come from two clocks (the controller's and the API server's); a skew between them shows in the queue, launch
    and job startup phases.
  - playbooks/latency_report.yml prints the report as a table, JSON or CSV.
"""

EXAMPLES = r"""
- name: Why was vm1 slow?
  cloudkit.provisioning.computeinstance_latency_info:
    name: vm1
    namespace: tenants
    controller_host: https://aap.example.com/api/controller
  register: latency

- name: Show the table
  ansible.builtin.debug:
    msg: "{{ latency.table }}"

- name: Percentiles over the last week, for a spreadsheet
  cloudkit.provisioning.computeinstance_latency_info:
    label_selector: team=web
    since: 7d
  register: week

- name: Save them
  ansible.builtin.copy:
    content: "{{ week.csv }}"
    dest: /tmp/latency.csv
    mode: "0644"
"""

RETURN = r"""
runs:
  description:
    - One entry per provision or deprovision run, oldest first. C(instance) (namespace, name, uid); C(run) (provision or
      deprovision); C(mode) (EDA, AAP Direct, or hand run without a controller record); C(job) (the controller's id,
      status, created, started, finished, launch_type; null without one); C(holder) (the job's lock holder name);
      C(waited_for) (the lock holder this run waited for); C(marks) (the moments joined, RFC 3339); C(phases) (seconds
      per phase, null when unknown); C(missing) and C(missing_why); C(total) (seconds from the request to the last
      known mark); C(slowest) (the phase that took longest).
  returned: always
  type: list
  elements: dict
  sample:
    - instance: {namespace: tenants, name: vm1, uid: 5b0f6d2e-0c1d-4f6a-9d7e-1a2b3c4d5e6f}
      run: provision
      mode: EDA
      job: {id: 42, status: successful, created: "2026-05-04T10:00:00.5Z", started: "2026-05-04T10:00:01.9Z"}
      holder: job-42@aap.example.com
      waited_for: null
      phases: {queue: 0.5, launch: 1.4, job_startup: 3.1, lock_wait: 0.0, vm_apply: 0.8, import: 17.9, boot: 6.2,
               bookkeeping: 0.3, operator_observed: 0.1}
      missing: []
      missing_why: []
      total: 30.3
      slowest: import
summary:
  description:
    - Per kind of run and mode, the number of runs, C(phases) with C(count), C(p50) and C(p95) seconds each (nearest
      rank), C(total) the same for whole runs, and C(slowest) the phase with the largest p50.
  returned: always
  type: list
  elements: dict
  sample:
    - run: provision
      mode: AAP Direct
      runs: 50
      phases: {import: {count: 50, p50: 17.2, p95: 25.0}}
      total: {count: 50, p50: 31.0, p95: 44.2}
      slowest: import
table:
  description: The report as text lines, one row per run then p50 and p95 per group, and what is missing for which run.
  returned: always
  type: list
  elements: str
csv:
  description: One CSV row per run (header first), a column per phase in seconds, empty when unknown.
  returned: always
  type: str
window:
  description: The window used, C(since) and C(before) (null for now), RFC 3339.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import env_fallback

from ansible_collections.cloudkit.provisioning.plugins.module_utils.aap import (
    ControllerError,
    client_from_kube_module_params,
    controller_argument_spec_with_kube,
)
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_errors import KubeError
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_module import KubeModule
from ansible_collections.cloudkit.provisioning.plugins.module_utils.latency import (
    DEPROVISION,
    PROVISION,
    LatencyError,
    LatencyReport,
    summarize,
    table,
    to_csv,
    window_bound,
)
from ansible_collections.cloudkit.provisioning.plugins.module_utils.limits import name_problems
from ansible_collections.cloudkit.provisioning.plugins.module_utils.names import DEFAULT_API_GROUP
from ansible_collections.cloudkit.provisioning.plugins.module_utils.times import micro_time


def main():
    argument_spec = {
        "name": {"type": "str"},
        "namespace": {"type": "str"},
        "label_selector": {"type": "str"},
        "since": {"type": "str", "default": "24h"},
        "before": {"type": "str"},
        "provision_template": {"type": "str", "default": "innabox-create-compute-instance"},
        "deprovision_template": {"type": "str", "default": "innabox-delete-compute-instance"},
        "organization": {"type": "str"},
        "api_group": {"type": "str", "default": DEFAULT_API_GROUP, "fallback": (env_fallback, ["CLOUDKIT_API_GROUP"])},
    }
    argument_spec.update(controller_argument_spec_with_kube())
    module = KubeModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[("name", "label_selector")],
        required_by={"name": ("namespace",)},
    )
    params = module.params
    if params["namespace"] is not None:
        problems = name_problems(params["namespace"], "the namespace", "namespace")
        if problems:
            module.fail_json(msg="; ".join(problems))
    try:
        since = window_bound(params["since"], "since")
        until = window_bound(params["before"], "before")
    except LatencyError as exc:
        module.fail_json(msg=str(exc))
    if since and until and until < since:
        module.fail_json(msg=f"before ({micro_time(until)}) is earlier than since ({micro_time(since)})")
    names = module.names(params["api_group"])
    try:
        controller = client_from_kube_module_params(params)
    except ValueError as exc:
        module.fail_json(msg=f"controller_host: {exc}")
    report = LatencyReport(
        module.client,
        names,
        controller=controller,
        controller_host=params["controller_host"],
        templates={PROVISION: params["provision_template"], DEPROVISION: params["deprovision_template"]},
        organization=params["organization"],
        since=since,
        until=until,
    )
    window = {"since": micro_time(since) if since else None, "before": micro_time(until) if until else None}
    try:
        runs = report.collect(params["namespace"], params["name"], params["label_selector"])
    except KubeError as error:
        module.fail_api(error, "cannot read the instances and their Events", window=window)
    except ControllerError as error:
        module.fail_json(
            msg=f"cannot read the jobs from the controller: {error.message}", api_error=error.to_dict(), window=window
        )
    for warning in report.warnings:
        module.warn(warning)
    summary = summarize(runs)
    module.exit_json(
        changed=False, runs=runs, summary=summary, table=table(runs, summary), csv=to_csv(runs), window=window
    )


if __name__ == "__main__":
    main()
