#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Check a cloudkit provisioning setup and report every problem at once, each with its fix."""

from __future__ import annotations

DOCUMENTATION = r"""
module: preflight
short_description: Check the EDA endpoint, CRD group, job templates and jobs' permissions of a cloudkit setup
version_added: 0.1.0
description:
  - Checks, against the cluster and the automation controller, what upstream got wrong, and reports every
    problem at once, each with its fix.
  - The operator's webhook URLs name a Service that exists in that namespace and exposes that port. On the
    EDA API service (C(<aap instance>-eda-api), port 8000) only event stream paths are accepted, since other
    paths answer 405. This catches C(innabox-eda-service:5000). URLs outside the cluster are not checked.
  - The ComputeInstance CRD is served under O(api_group) at C(v1alpha1). This catches a cloudkit/osac rename mismatch.
  - The job templates exist in the controller, when O(controller_host) is given.
  - With O(check_operator), the running operator's own configuration, read from the environment of its Deployment's
    containers (plain values, C(valueFrom) Secret and ConfigMap keys, C(envFrom)). Which provider it selects
    (C(CLOUDKIT_PROVISIONING_PROVIDER), V(eda) or V(aap)) and whether that provider's settings are complete. For EDA,
    both
    webhook variables go through the webhook checks above. For AAP Direct, the controller at C(CLOUDKIT_AAP_URL)
    answers,
    the token the operator reads (from its Secret) authenticates, and its provision and deprovision templates exist in
    O(organization) and prompt for variables on launch. The later operator's C(OSAC_*) names are read the same way, and
    the variable prefix must match O(api_group) (C(CLOUDKIT_*) goes with C(cloudkit.openshift.io), C(OSAC_*) with
    C(osac.openshift.io)). Values read from Secrets are never returned or printed.
  - With O(check_permissions), the credential of this task (the jobs' cluster credential, from the same
    C(K8S_AUTH_*) variables) may do everything the create and delete jobs do. One
    C(SelfSubjectAccessReview) per verb, in O(instance_namespaces) and O(target_namespaces), or in all namespaces when
    none are given. Each missing permission is reported with the RBAC rule that grants it.
author:
  - cloudkit.provisioning contributors (@cloudkit)
extends_documentation_fragment:
  - cloudkit.provisioning.kube
  - cloudkit.provisioning.controller.with_kube
attributes:
  check_mode:
    support: full
    description: Only reads.
  diff_mode:
    support: none
    description: Nothing is written.
options:
  webhook_urls:
    description:
      - The operator's create and delete webhook URLs (its C(*_COMPUTE_INSTANCE_CREATE_WEBHOOK) and
        C(*_DELETE_WEBHOOK)).
    type: list
    elements: str
    default: []
  webhook_namespace:
    description: Namespace of webhook hosts given as a bare service name (usually the AAP namespace).
    type: str
  aap_instance:
    description: Name of the AAP instance, whose EDA API service C(<name>-eda-api) receives events.
    type: str
    default: innabox-aap
  api_group:
    description:
      - API group the collection is configured with; the ComputeInstance CRD must be served under it.
      - Can also be set with the E(CLOUDKIT_API_GROUP) environment variable.
    type: str
    default: cloudkit.openshift.io
  job_templates:
    description: Job templates that must exist in the controller; checked only when O(controller_host) is set.
    type: list
    elements: str
    default: [innabox-create-compute-instance, innabox-delete-compute-instance]
  organization:
    description: Organization of O(job_templates).
    type: str
    default: innabox
  check_permissions:
    description: Check the credential's permissions with C(SelfSubjectAccessReview)s.
    type: bool
    default: true
  instance_namespaces:
    description: Namespaces of the ComputeInstances whose permissions are checked; empty means all namespaces.
    type: list
    elements: str
    default: []
  target_namespaces:
    description:
      - Namespaces of the VM objects (the Tenants' namespaces) whose permissions are checked; empty means all
        namespaces.
    type: list
    elements: str
    default: []
  check_operator:
    description: Read the operator's Deployment and check the provider it is configured with (see the description).
    type: bool
    default: false
  operator_namespace:
    description: Namespace of the operator's Deployment.
    type: str
    default: cloudkit-operator-system
  operator_deployment:
    description: Name of the operator's Deployment.
    type: str
    default: cloudkit-operator-controller-manager
  fail_on_problems:
    description: Fail the task when any check finds a problem (the findings are returned either way).
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Check the setup before wiring the operator
  cloudkit.provisioning.preflight:
    webhook_urls:
      - "{{ lookup('ansible.builtin.env', 'CLOUDKIT_COMPUTE_INSTANCE_CREATE_WEBHOOK') }}"
      - "{{ lookup('ansible.builtin.env', 'CLOUDKIT_COMPUTE_INSTANCE_DELETE_WEBHOOK') }}"
    webhook_namespace: aap
    api_group: cloudkit.openshift.io
    controller_host: https://aap.example.com/api/controller
"""

RETURN = r"""
findings:
  description: Every check made, as check, target, ok, problem and fix.
  returned: always
  type: list
  elements: dict
  sample:
    - {check: webhook, target: "http://innabox-eda-service:5000/create-vm", ok: false,
       problem: Service aap/innabox-eda-service does not exist,
       fix: "point it at the event stream on the EDA API service:
         http://innabox-aap-eda-api.aap.svc:8000/api/eda/v1/external_event_stream/<event stream uuid>/post/"}
operator:
  description:
    - With O(check_operator), what the operator's Deployment says. C(deployment), C(prefix) (C(CLOUDKIT) or C(OSAC)),
      C(provider) (eda, aap, or null when unusable) and C(variables). For a variable read from a Secret, C(variables)
      holds only where it comes from, never its value.
  returned: when O(check_operator=true)
  type: dict
  sample:
    deployment: Deployment cloudkit-operator-system/cloudkit-operator-controller-manager
    prefix: CLOUDKIT
    provider: aap
    variables:
      CLOUDKIT_PROVISIONING_PROVIDER: aap
      CLOUDKIT_AAP_URL: https://innabox-aap.aap.svc/api/controller
      CLOUDKIT_AAP_TOKEN: (from Secret cloudkit-operator-system/aap-token key token)
problems:
  description: The failed findings as one line each, problem then fix.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import env_fallback

from ansible_collections.cloudkit.provisioning.plugins.module_utils.aap import (
    ControllerClient,
    ControllerError,
    client_from_kube_module_params,
    controller_argument_spec_with_kube,
)
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_errors import KubeError
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_module import KubeModule
from ansible_collections.cloudkit.provisioning.plugins.module_utils.preflight import (
    DEFAULT_OPERATOR_DEPLOYMENT,
    DEFAULT_OPERATOR_NAMESPACE,
    check_crd,
    check_operator,
    check_permissions,
    check_templates,
    check_webhook,
    finding,
)


def main():
    argument_spec = {
        "webhook_urls": {"type": "list", "elements": "str", "default": []},
        "webhook_namespace": {"type": "str"},
        "aap_instance": {"type": "str", "default": "innabox-aap"},
        "api_group": {
            "type": "str",
            "default": "cloudkit.openshift.io",
            "fallback": (env_fallback, ["CLOUDKIT_API_GROUP"]),
        },
        "job_templates": {
            "type": "list",
            "elements": "str",
            "default": ["innabox-create-compute-instance", "innabox-delete-compute-instance"],
        },
        "organization": {"type": "str", "default": "innabox"},
        "fail_on_problems": {"type": "bool", "default": True},
        "check_operator": {"type": "bool", "default": False},
        "operator_namespace": {"type": "str", "default": DEFAULT_OPERATOR_NAMESPACE},
        "operator_deployment": {"type": "str", "default": DEFAULT_OPERATOR_DEPLOYMENT},
        "check_permissions": {"type": "bool", "default": True},
        "instance_namespaces": {"type": "list", "elements": "str", "default": []},
        "target_namespaces": {"type": "list", "elements": "str", "default": []},
    }
    argument_spec.update(controller_argument_spec_with_kube())
    module = KubeModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    module.names(params["api_group"])  # a malformed group fails here, naming the option
    client = module.client
    findings = []
    facts = {}
    try:
        for url in dict.fromkeys(u for u in params["webhook_urls"] if u):
            findings.extend(
                check_webhook(client, url, params["webhook_namespace"], "{}-eda-api".format(params["aap_instance"]))
            )
        findings.extend(check_crd(client, params["api_group"]))
        if params["check_permissions"]:
            findings.extend(
                check_permissions(
                    client, params["api_group"], params["instance_namespaces"], params["target_namespaces"]
                )
            )
        if params["check_operator"]:
            operator_findings, facts["operator"] = check_operator(
                client,
                params["operator_namespace"],
                params["operator_deployment"],
                params["api_group"],
                params["webhook_namespace"],
                "{}-eda-api".format(params["aap_instance"]),
                params["organization"],
                params["job_templates"],
                lambda url, token: ControllerClient(
                    url, token=token, validate_certs=params["controller_validate_certs"]
                ),
            )
            findings.extend(operator_findings)
    except KubeError as error:
        module.fail_api(error, "cannot check the cluster", findings=findings)
    if params["controller_host"]:
        try:
            controller = client_from_kube_module_params(params)
            findings.extend(check_templates(controller, params["job_templates"], params["organization"]))
        except (ControllerError, ValueError) as error:
            findings.append(
                finding(
                    "controller",
                    params["controller_host"],
                    getattr(error, "message", str(error)),
                    "check controller_host and its credentials",
                )
            )
    problems = [
        "{} {}: {}. Fix: {}".format(f["check"], f["target"], f["problem"], f["fix"]) for f in findings if not f["ok"]
    ]
    if problems and params["fail_on_problems"]:
        module.fail_json(
            msg=f"{len(problems)} problem(s): {' | '.join(problems)}",
            findings=findings,
            problems=problems,
            **facts,
        )
    module.exit_json(changed=False, findings=findings, problems=problems, **facts)


if __name__ == "__main__":
    main()
