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

from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube import STATIC_RESOURCES, NotFound
from ansible_collections.cloudkit.provisioning.plugins.module_utils.names import API_VERSION, COMPUTE_INSTANCE_PLURAL, Names

SERVICE = STATIC_RESOURCES[("v1", "Service")]
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
