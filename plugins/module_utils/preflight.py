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

from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_errors import Forbidden, NotFound
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_resources import STATIC_RESOURCES, Resource
from ansible_collections.cloudkit.provisioning.plugins.module_utils.names import (
    API_VERSION,
    COMPUTE_INSTANCE_PLURAL,
    Names,
)

SERVICE = STATIC_RESOURCES[("v1", "Service")]
SELF_SUBJECT_ACCESS_REVIEW = Resource(
    "authorization.k8s.io/v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", namespaced=False, has_status=False
)
SELF_SUBJECT_REVIEW = Resource(
    "authentication.k8s.io/v1", "SelfSubjectReview", "selfsubjectreviews", namespaced=False, has_status=False
)
CRUD = ("get", "list", "watch", "create", "patch", "delete")
CRD = STATIC_RESOURCES[("apiextensions.k8s.io/v1", "CustomResourceDefinition")]
KNOWN_GROUPS = ("cloudkit.openshift.io", "osac.openshift.io")
EDA_API_PORT = 8000
EVENT_STREAM_PATH = re.compile(r"^(/eda-event-streams)?/api/eda/v1/external_event_stream/[0-9a-f-]{36}/post/?$")


def finding(check, target, problem=None, fix=None):
    return {"check": check, "target": target, "ok": problem is None, "problem": problem, "fix": fix}


def event_stream_url(eda_api_service, namespace):
    return (f"http://{eda_api_service}.{namespace}.svc:{EDA_API_PORT}"
            "/api/eda/v1/external_event_stream/<event stream uuid>/post/")


def service_of(url, default_namespace):
    """(service, namespace, port, path) for an in-cluster URL, None for a host outside the cluster."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL")
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
    fix = "point it at the event stream on the EDA API service: {}".format(
        event_stream_url(eda_api_service, namespace or "<namespace>")
    )
    if namespace is None:
        return [finding(check, url, f"the host {service!r} names no namespace and no default namespace was given", fix)]
    try:
        live = client.get(SERVICE, service, namespace)
    except NotFound:
        return [finding(check, url, f"Service {namespace}/{service} does not exist", fix)]
    ports = sorted(p.get("port") for p in (live.get("spec") or {}).get("ports") or [])
    if port not in ports:
        return [
            finding(
                check,
                url,
                f"Service {namespace}/{service} exposes port(s) {', '.join(map(str, ports)) or 'none'}, not {port}",
                fix,
            )
        ]
    if service == eda_api_service and not EVENT_STREAM_PATH.match(path):
        return [
            finding(check, url, f"the EDA API answers {path} with 405: only event stream paths receive events", fix)
        ]
    return [finding(check, url)]


def check_crd(client, api_group):
    """The ComputeInstance CRD is served under api_group at v1alpha1 (catches the cloudkit -> osac rename)."""
    names = Names(api_group)
    target = names.compute_instance_crd
    try:
        crd = client.get(CRD, target)
    except Forbidden as error:
        return [
            finding(
                "crd",
                target,
                error.message,
                "grant the preflight's credential the cloudkit-provisioning-preflight ClusterRole "
                "(docs/aap.md): get on customresourcedefinitions.apiextensions.k8s.io",
            )
        ]
    except NotFound:
        served = [group for group in KNOWN_GROUPS if group != api_group and _crd_exists(client, group)]
        if served:
            return [
                finding(
                    "crd",
                    target,
                    f"the cluster serves ComputeInstance as {COMPUTE_INSTANCE_PLURAL}.{served[0]}, not in {api_group}",
                    f"set api_group (or CLOUDKIT_API_GROUP) to {served[0]}, the operator's group",
                )
            ]
        return [
            finding(
                "crd",
                target,
                "no ComputeInstance CRD is installed",
                "install the cloudkit operator (its CRDs) or fix api_group",
            )
        ]
    versions = [v.get("name") for v in (crd.get("spec") or {}).get("versions") or [] if v.get("served")]
    if API_VERSION not in versions:
        return [
            finding(
                "crd",
                target,
                "{} is not served (served: {})".format(API_VERSION, ", ".join(versions) or "none"),
                "upgrade this collection to a version that speaks {}".format(", ".join(versions)),
            )
        ]
    return [finding("crd", target)]


def _crd_exists(client, group):
    return client.get_or_none(CRD, Names(group).compute_instance_crd) is not None


def check_templates(controller, template_names, organization, template_type="job"):
    """Each job template exists in the controller (in the organization); other controller errors are raised."""
    from ansible_collections.cloudkit.provisioning.plugins.module_utils.aap import (
        Ambiguous,
        NotFound as TemplateNotFound,
    )

    findings = []
    for name in template_names:
        try:
            controller.find_template(name, organization, template_type)
        except (TemplateNotFound, Ambiguous) as error:
            findings.append(
                finding(
                    "job_template",
                    name,
                    error.message,
                    "create the job template {!r} in organization {!r} running playbooks/{}".format(
                        name,
                        organization,
                        "delete_compute_instance.yml" if "delete" in name else "create_compute_instance.yml",
                    ),
                )
            )
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
        review = client.create(
            SELF_SUBJECT_REVIEW, {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        )
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
            where = (
                f"in namespace {namespace}"
                if namespace
                else ("in all namespaces" if scope != "cluster" else "cluster-wide")
            )
            missing = []
            for verb in verbs:
                attributes = {"verb": verb, "group": group, "resource": plural}
                if subresource:
                    attributes["subresource"] = subresource
                if namespace:
                    attributes["namespace"] = namespace
                review = client.create(
                    SELF_SUBJECT_ACCESS_REVIEW,
                    {
                        "apiVersion": "authorization.k8s.io/v1",
                        "kind": "SelfSubjectAccessReview",
                        "spec": {"resourceAttributes": attributes},
                    },
                )
                if not (review.get("status") or {}).get("allowed"):
                    missing.append(verb)
            target = "{} {}".format(resource if not group else f"{resource}.{group}", where)
            if not missing:
                findings.append(finding("permission", target))
                continue
            rule = "{{apiGroups: [{}], resources: [{}], verbs: [{}]}}".format(
                '""' if not group else group, resource, ", ".join(missing)
            )
            binding = f"a RoleBinding in {namespace}" if namespace else "a ClusterRoleBinding"
            findings.append(
                finding(
                    "permission",
                    target,
                    "{} may not {} {} {}".format(user, "/".join(missing), resource, where),
                    f"grant the rule {rule} to {user} through {binding} (the ClusterRole in docs/aap.md has them all)",
                )
            )
    return findings


# -- the operator's own configuration, read from its Deployment --------------------------------------------------

DEPLOYMENT = Resource("apps/v1", "Deployment", "deployments")
SECRET = STATIC_RESOURCES[("v1", "Secret")]
CONFIG_MAP = STATIC_RESOURCES[("v1", "ConfigMap")]
DEFAULT_OPERATOR_NAMESPACE = "cloudkit-operator-system"
DEFAULT_OPERATOR_DEPLOYMENT = "cloudkit-operator-controller-manager"
# The operator's variable prefix, and the API group of the operator generation that uses it (the rename changed both).
ENV_PREFIXES = {"CLOUDKIT": "cloudkit.openshift.io", "OSAC": "osac.openshift.io"}
PROVIDERS = ("eda", "aap")


class EnvValue:
    """One variable of the operator's container: its value and where it comes from. A Secret's value never shows in
    repr."""

    __slots__ = ("name", "value", "source", "from_secret", "problem")

    def __init__(self, name, value=None, source="value", from_secret=False, problem=None):
        self.name = name
        self.value = value
        self.source = source
        self.from_secret = from_secret
        self.problem = problem

    def __repr__(self):
        return f"EnvValue({self.name} from {self.source})"

    def shown(self):
        """What a report may say about it: the value, or for a Secret only where it comes from."""
        if self.problem:
            return f"({self.source}: {self.problem})"
        if self.from_secret:
            return f"(from {self.source})"
        if self.name.endswith(("_TOKEN", "_PASSWORD")):
            return "(set in the Deployment, not shown)"
        return self.value


def _decoded(secret, key):
    import base64

    data = (secret.get("data") or {}).get(key)
    if data is not None:
        return base64.b64decode(data).decode("utf-8", "replace")
    return (secret.get("stringData") or {}).get(key)


def _reference(client, namespace, kind, name, key, cache):
    """(value, problem) of a key of a Secret or ConfigMap in the operator's namespace; never the Secret's value in a
    message."""
    resource = SECRET if kind == "Secret" else CONFIG_MAP
    if (kind, name) not in cache:
        try:
            cache[(kind, name)] = client.get(resource, name, namespace)
        except NotFound:
            cache[(kind, name)] = None
        except Forbidden as error:
            cache[(kind, name)] = error
    obj = cache[(kind, name)]
    if isinstance(obj, Forbidden):
        return None, f"cannot be read ({obj.message})"
    if obj is None:
        return None, f"{kind} {namespace}/{name} does not exist"
    value = _decoded(obj, key) if kind == "Secret" else (obj.get("data") or {}).get(key)
    if value is None:
        return None, f"{kind} {namespace}/{name} has no key {key}"
    return value, None


def operator_environment(client, deployment):
    """{name: EnvValue} of every container of the Deployment (env and envFrom), Secret and ConfigMap references
    resolved."""
    namespace = deployment["metadata"]["namespace"]
    cache = {}
    found = {}
    containers = ((((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers")) or []
    for container in containers:
        for source in container.get("envFrom") or []:
            for kind, field in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
                ref = source.get(field)
                if not ref:
                    continue
                obj = client.get_or_none(SECRET if kind == "Secret" else CONFIG_MAP, ref["name"], namespace)
                items = (obj or {}).get("data") or {}
                for key in items:
                    value = _decoded(obj, key) if kind == "Secret" else items[key]
                    name = (source.get("prefix") or "") + key
                    found[name] = EnvValue(
                        name, value, "{} {}/{}".format(kind, namespace, ref["name"]), kind == "Secret"
                    )
        for variable in container.get("env") or []:
            name = variable.get("name")
            value_from = variable.get("valueFrom") or {}
            for kind, field in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
                ref = value_from.get(field)
                if ref:
                    value, problem = _reference(client, namespace, kind, ref.get("name"), ref.get("key"), cache)
                    where = "{} {}/{} key {}".format(kind, namespace, ref.get("name"), ref.get("key"))
                    found[name] = EnvValue(name, value, where, kind == "Secret", problem)
                    break
            else:
                found[name] = EnvValue(name, variable.get("value"))
    return found


def _prefix_of(env):
    """The operator's variable prefix (CLOUDKIT or OSAC), or None when it sets neither."""
    counts = dict((prefix, sum(1 for name in env if name.startswith(prefix + "_"))) for prefix in ENV_PREFIXES)
    with_provider = [prefix for prefix in ENV_PREFIXES if prefix + "_PROVISIONING_PROVIDER" in env]
    if with_provider:
        return with_provider[0]
    best = max(counts, key=lambda prefix: counts[prefix])
    return best if counts[best] else None


def check_operator(
    client,
    namespace,
    name,
    api_group,
    webhook_namespace,
    eda_api_service,
    organization,
    default_templates,
    controller_factory,
):
    """Which provider the running operator uses, from its Deployment's environment, and whether its settings work.

    `controller_factory(url, token)` makes the client that checks AAP Direct with the operator's own URL and token.
    Returns (findings, facts); facts never hold a value read from a Secret.
    """
    target = f"Deployment {namespace}/{name}"
    fix_location = "set operator_namespace and operator_deployment to the operator's Deployment"
    try:
        deployment = client.get(DEPLOYMENT, name, namespace)
    except NotFound:
        return [finding("operator", target, "the operator's Deployment does not exist", fix_location)], {}
    except Forbidden as error:
        return [
            finding(
                "operator",
                target,
                error.message,
                f"grant the preflight's credential get on deployments.apps, secrets and configmaps in {namespace}",
            )
        ], {}
    env = operator_environment(client, deployment)
    prefix = _prefix_of(env)
    facts = {
        "deployment": target,
        "prefix": prefix,
        "provider": None,
        "variables": dict((n, v.shown()) for n, v in sorted(env.items()) if n.split("_", 1)[0] in ENV_PREFIXES),
    }
    if prefix is None:
        return [
            finding(
                "operator",
                target,
                "its containers set no CLOUDKIT_* or OSAC_* variable",
                "set CLOUDKIT_PROVISIONING_PROVIDER and the variables of that provider (docs/day2.md)",
            )
        ], facts
    findings = []
    other = [p for p in ENV_PREFIXES if p != prefix and any(n.startswith(p + "_") for n in env)]
    if other:
        findings.append(
            finding(
                "operator",
                target,
                f"it mixes {prefix}_* and {other[0]}_* variables; it reads only one set",
                f"use the {prefix}_* names only ({other[0]}_* are those of the other operator generation)",
            )
        )
    if ENV_PREFIXES[prefix] != api_group:
        findings.append(
            finding(
                "api_group",
                target,
                f"the operator uses the {prefix}_* variables of the operator whose API group is "
                f"{ENV_PREFIXES[prefix]}, but api_group is {api_group}",
                f"set api_group (or CLOUDKIT_API_GROUP) to {ENV_PREFIXES[prefix]}, "
                f"or run the operator generation of {api_group}",
            )
        )
    else:
        findings.append(finding("api_group", target))

    def var(suffix):
        return env.get(f"{prefix}_{suffix}")

    provider_var = f"{prefix}_PROVISIONING_PROVIDER"
    provider = var("PROVISIONING_PROVIDER")
    value = (provider.value or "").strip().lower() if provider is not None else ""
    if provider is None or provider.problem or value not in PROVIDERS:
        problem = (
            f"{provider_var} is not set"
            if provider is None or (not value and not provider.problem)
            else (f"{provider_var} is {provider.shown() if provider.problem else repr(provider.value)}")
        )
        findings.append(
            finding("provider", target, problem, f"set {provider_var} to eda (webhooks to EDA) or aap (AAP Direct)")
        )
        return findings, facts
    facts["provider"] = value
    findings.append(finding("provider", f"{provider_var}={value}"))
    if value == "eda":
        findings.extend(_check_eda(client, env, prefix, webhook_namespace or namespace, eda_api_service))
    else:
        findings.extend(_check_aap(env, prefix, organization, default_templates, controller_factory))
    return findings, facts


def _missing(check, name, fix):
    return finding(check, name, f"{name} is not set", fix)


def _check_eda(client, env, prefix, webhook_namespace, eda_api_service):
    findings = []
    for action in ("CREATE", "DELETE"):
        name = f"{prefix}_COMPUTE_INSTANCE_{action}_WEBHOOK"
        variable = env.get(name)
        if variable is None or not variable.value:
            findings.append(
                _missing(
                    "webhook",
                    name,
                    f"set {name} to the event stream on the EDA API service: "
                    f"{event_stream_url(eda_api_service, webhook_namespace)}",
                )
            )
            continue
        for result in check_webhook(client, variable.value, webhook_namespace, eda_api_service):
            result["target"] = "{}={}".format(name, result["target"])
            findings.append(result)
    return findings


def _check_aap(env, prefix, organization, default_templates, controller_factory):
    from ansible_collections.cloudkit.provisioning.plugins.module_utils import aap

    url_name, token_name = f"{prefix}_AAP_URL", f"{prefix}_AAP_TOKEN"
    url, token = env.get(url_name), env.get(token_name)
    findings = []
    if url is None or not url.value:
        findings.append(
            _missing(
                "controller",
                url_name,
                f"set {url_name} to the controller's API base, for example https://<aap>.<namespace>.svc/api/controller",
            )
        )
    if token is None or (not token.value and not token.problem):
        findings.append(
            _missing(
                "controller",
                token_name,
                f"set {token_name} from a Secret (valueFrom.secretKeyRef) holding a controller token with Execute"
                " on both templates",
            )
        )
    elif token.problem:
        findings.append(
            finding(
                "controller",
                f"{token_name} ({token.source})",
                token.problem,
                f"create it, or point {token_name}'s secretKeyRef at the Secret that holds the token",
            )
        )
    elif not token.from_secret:
        findings.append(
            finding(
                "controller",
                token_name,
                "the token is written in the Deployment itself",
                f"move it to a Secret and set {token_name} with valueFrom.secretKeyRef",
            )
        )
    if findings and (url is None or not url.value or token is None or not token.value):
        return findings
    where = f"{url_name}={url.value}"
    try:
        controller = controller_factory(url.value, token.value)
        controller.get("me/")
    except ValueError as exc:
        return findings + [finding("controller", where, str(exc), f"set {url_name} to the controller's API base URL")]
    except aap.Unauthorized:
        return findings + [
            finding(
                "controller",
                where,
                f"the controller refused the operator's token ({token.source}, HTTP 401)",
                f"put a valid controller token in {token.source}",
            )
        ]
    except aap.ControllerError as error:
        return findings + [
            finding(
                "controller",
                where,
                error.message,
                f"check that {url_name} is the controller's URL and reachable from the cluster",
            )
        ]
    findings.append(finding("controller", where))
    for suffix, default in zip(("AAP_PROVISION_TEMPLATE", "AAP_DEPROVISION_TEMPLATE"), default_templates):
        variable = env.get(f"{prefix}_{suffix}")
        name = variable.value if variable is not None and variable.value else default
        label = f"{prefix}_{suffix}={name}"
        try:
            template, _kind = controller.find_template_any(name, organization)
        except (aap.NotFound, aap.Ambiguous) as error:
            findings.append(
                finding(
                    "job_template",
                    label,
                    error.message,
                    f"create the template {name!r} in organization {organization!r}, or fix {prefix}_{suffix}",
                )
            )
            continue
        except aap.ControllerError as error:
            findings.append(
                finding("job_template", label, error.message, "give the operator's token Execute on the template")
            )
            continue
        if not aap.accepts_extra_vars(template):
            findings.append(
                finding(
                    "job_template",
                    label,
                    "it does not prompt for variables on launch, so the instance the operator sends is dropped",
                    f"enable Prompt on launch for Variables on {name!r}",
                )
            )
        else:
            findings.append(finding("job_template", label))
    return findings
