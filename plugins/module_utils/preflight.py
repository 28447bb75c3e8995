# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Checks of a cloudkit setup against the cluster and the controller; every problem comes with its fix.

Each check returns a list of findings {check, target, ok, problem, fix}; nothing
stops at the first problem, so one run shows everything that is wrong.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube import STATIC_RESOURCES, Forbidden, NotFound, Resource
from ansible_collections.cloudkit.provisioning.plugins.module_utils.names import API_VERSION, COMPUTE_INSTANCE_PLURAL, Names

SERVICE = STATIC_RESOURCES[("v1", "Service")]
SELF_SUBJECT_ACCESS_REVIEW = Resource("authorization.k8s.io/v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews",
                                      namespaced=False, has_status=False)
SELF_SUBJECT_REVIEW = Resource("authentication.k8s.io/v1", "SelfSubjectReview", "selfsubjectreviews", namespaced=False, has_status=False)
CRUD = ("get", "list", "watch", "create", "patch", "delete")
CRD = STATIC_RESOURCES[("apiextensions.k8s.io/v1", "CustomResourceDefinition")]
KNOWN_GROUPS = ("cloudkit.openshift.io", "osac.openshift.io")
EDA_API_PORT = 8000
EVENT_STREAM_PATH = re.compile(r"^(/eda-event-streams)?/api/eda/v1/external_event_stream/[0-9a-f-]{36}/post/?$")


def finding(check, target, problem=None, fix=None):
    return {"check": check, "target": target, "ok": problem is None, "problem": problem, "fix": fix}


def event_stream_url(eda_api_service, namespace):
    return "http://%s.%s.svc:%d/api/eda/v1/external_event_stream/<event stream uuid>/post/" % (eda_api_service, namespace, EDA_API_PORT)


def service_of(url, default_namespace):
    """(service, namespace, port, path) for an in-cluster URL, None for a host outside the cluster."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("%r is not an http(s) URL" % url)
    labels = parts.hostname.split(".")
    if len(labels) == 1:
        namespace = default_namespace
    elif len(labels) == 2 or labels[2:] in (["svc"], ["svc", "cluster", "local"]):
        namespace = labels[1]
    else:
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return labels[0], namespace, port, parts.path or "/"


def check_webhook(client, url, default_namespace, eda_api_service):
    """The URL names a Service that exists and exposes the port; on the EDA API it is an event stream path."""
    check = "webhook"
    try:
        target = service_of(url, default_namespace)
    except ValueError as exc:
        return [finding(check, url, str(exc), "use http://<service>.<namespace>.svc:<port>/<path>")]
    if target is None:
        return [finding(check, url)]
    service, namespace, port, path = target
    fix = "point it at the event stream on the EDA API service: %s" % event_stream_url(eda_api_service, namespace or "<namespace>")
    if namespace is None:
        return [finding(check, url, "the host %r names no namespace and no default namespace was given" % service, fix)]
    try:
        live = client.get(SERVICE, service, namespace)
    except NotFound:
        return [finding(check, url, "Service %s/%s does not exist" % (namespace, service), fix)]
    ports = sorted(p.get("port") for p in (live.get("spec") or {}).get("ports") or [])
    if port not in ports:
        return [finding(check, url, "Service %s/%s exposes port(s) %s, not %d" % (namespace, service, ", ".join(map(str, ports)) or "none", port), fix)]
    if service == eda_api_service and not EVENT_STREAM_PATH.match(path):
        return [finding(check, url, "the EDA API answers %s with 405: only event stream paths receive events" % path, fix)]
    return [finding(check, url)]


def check_crd(client, api_group):
    """The ComputeInstance CRD is served under api_group at v1alpha1 (catches the cloudkit -> osac rename)."""
    names = Names(api_group)
    target = names.compute_instance_crd
    try:
        crd = client.get(CRD, target)
    except Forbidden as error:
        return [finding("crd", target, error.message, "grant the preflight's credential the cloudkit-provisioning-preflight ClusterRole "
                                                      "(docs/aap.md): get on customresourcedefinitions.apiextensions.k8s.io")]
    except NotFound:
        served = [group for group in KNOWN_GROUPS if group != api_group and _crd_exists(client, group)]
        if served:
            return [finding("crd", target, "the cluster serves ComputeInstance as %s.%s, not in %s" % (COMPUTE_INSTANCE_PLURAL, served[0], api_group),
                            "set api_group (or CLOUDKIT_API_GROUP) to %s, the operator's group" % served[0])]
        return [finding("crd", target, "no ComputeInstance CRD is installed", "install the cloudkit operator (its CRDs) or fix api_group")]
    versions = [v.get("name") for v in (crd.get("spec") or {}).get("versions") or [] if v.get("served")]
    if API_VERSION not in versions:
        return [finding("crd", target, "%s is not served (served: %s)" % (API_VERSION, ", ".join(versions) or "none"),
                        "upgrade this collection to a version that speaks %s" % ", ".join(versions))]
    return [finding("crd", target)]


def _crd_exists(client, group):
    return client.get_or_none(CRD, Names(group).compute_instance_crd) is not None


def check_templates(controller, template_names, organization, template_type="job"):
    """Each job template exists in the controller (in the organization); other controller errors are raised."""
    from ansible_collections.cloudkit.provisioning.plugins.module_utils.aap import Ambiguous, NotFound as TemplateNotFound

    findings = []
    for name in template_names:
        try:
            controller.find_template(name, organization, template_type)
        except (TemplateNotFound, Ambiguous) as error:
            findings.append(finding("job_template", name, error.message,
                                    "create the job template %r in organization %r running playbooks/%s" % (
                                        name, organization, "delete_compute_instance.yml" if "delete" in name else "create_compute_instance.yml")))
        else:
            findings.append(finding("job_template", name))
    return findings


def job_permissions(api_group):
    """What the create and delete jobs do on the API: (group, resource, verbs, scope), scope being "instance" (the
    ComputeInstance's namespace), "target" (the Tenant's namespace, where the VM objects live) or "cluster".

    The same list as docs/aap.md ("What the jobs do on the API"), from the calls in module_utils.
    """
    return [
        (api_group, "computeinstances", ("get", "patch"), "instance"),
        (api_group, "computeinstances/status", ("patch",), "instance"),
        (api_group, "tenants", ("get",), "instance"),
        ("coordination.k8s.io", "leases", ("get", "create", "update", "delete", "watch"), "instance"),
        ("", "events", ("create",), "instance"),
        ("", "secrets", CRUD, "target"),
        ("", "services", CRUD, "target"),
        ("cdi.kubevirt.io", "datavolumes", CRUD, "target"),
        ("", "persistentvolumeclaims", ("get", "patch"), "target"),
        ("kubevirt.io", "virtualmachines", CRUD, "target"),
        ("kubevirt.io", "virtualmachineinstances", ("get", "watch", "delete"), "target"),
        ("kubevirt.io", "virtualmachines", ("list",), "cluster"),
        ("storage.k8s.io", "storageclasses", ("list",), "cluster"),
    ]


def whoami(client):
    """The user name of the client's credential (SelfSubjectReview), or None where the API has no such review."""
    try:
        review = client.create(SELF_SUBJECT_REVIEW, {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    except NotFound:
        return None
    return (((review.get("status") or {}).get("userInfo")) or {}).get("username")


def check_permissions(client, api_group, instance_namespaces=(), target_namespaces=()):
    """One SelfSubjectAccessReview per verb the jobs need, in each namespace given (all namespaces when none is).

    Every missing permission is a finding whose fix is the RBAC rule that grants it.
    """
    user = whoami(client) or "the job's credential"
    scopes = {"instance": list(instance_namespaces) or [""], "target": list(target_namespaces) or [""], "cluster": [""]}
    findings = []
    for group, resource, verbs, scope in job_permissions(api_group):
        plural, _slash, subresource = resource.partition("/")
        for namespace in scopes[scope]:
            where = "in namespace %s" % namespace if namespace else ("in all namespaces" if scope != "cluster" else "cluster-wide")
            missing = []
            for verb in verbs:
                attributes = {"verb": verb, "group": group, "resource": plural}
                if subresource:
                    attributes["subresource"] = subresource
                if namespace:
                    attributes["namespace"] = namespace
                review = client.create(SELF_SUBJECT_ACCESS_REVIEW, {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                                                                    "spec": {"resourceAttributes": attributes}})
                if not (review.get("status") or {}).get("allowed"):
                    missing.append(verb)
            target = "%s %s" % (resource if not group else "%s.%s" % (resource, group), where)
            if not missing:
                findings.append(finding("permission", target))
                continue
            rule = "{apiGroups: [%s], resources: [%s], verbs: [%s]}" % ('""' if not group else group, resource, ", ".join(missing))
            binding = "a RoleBinding in %s" % namespace if namespace else "a ClusterRoleBinding"
            findings.append(finding("permission", target, "%s may not %s %s %s" % (user, "/".join(missing), resource, where),
                                    "grant the rule %s to %s through %s (the ClusterRole in docs/aap.md has them all)" % (rule, user, binding)))
    return findings
