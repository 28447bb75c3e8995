"""Unit tests for plugins/module_utils/preflight.py: the permission check (SelfSubjectAccessReview per verb) and the operator's Deployment."""

from __future__ import annotations

import base64

from ansible_collections.cloudkit.provisioning.plugins.module_utils import kube_errors, preflight
from ansible_collections.cloudkit.provisioning.plugins.module_utils.preflight import check_permissions, job_permissions

GROUP = "cloudkit.openshift.io"


class Reviewer:
    """Answers SelfSubjectAccessReviews from a set of (group, resource, verb, namespace) grants, as an RBAC authorizer would."""

    def __init__(self, grants, user="system:serviceaccount:aap:cloudkit-provisioning", reviews=True):
        self.grants = grants
        self.user = user
        self.reviews = reviews
        self.asked = []

    def create(self, resource, body, namespace=None, dry_run=False):
        if resource.kind == "SelfSubjectReview":
            if not self.reviews:
                raise kube_errors.NotFound("the server could not find the requested resource", status=404, reason="NotFound")
            return dict(body, status={"userInfo": {"username": self.user}})
        attributes = body["spec"]["resourceAttributes"]
        resource_name = attributes["resource"] + ("/" + attributes["subresource"] if attributes.get("subresource") else "")
        key = (attributes["group"], resource_name, attributes["verb"], attributes.get("namespace", ""))
        self.asked.append(key)
        allowed = key in self.grants or (key[0], key[1], key[2], "*") in self.grants
        return dict(body, status={"allowed": allowed})


def everything(namespace="*"):
    return {(group, resource, verb, "" if scope == "cluster" else namespace)
            for group, resource, verbs, scope in job_permissions(GROUP) for verb in verbs}


def test_a_credential_with_every_permission_passes():
    findings = check_permissions(Reviewer(everything()), GROUP)
    assert findings and all(f["ok"] for f in findings)


def test_each_missing_permission_is_named_with_the_rule_that_grants_it():
    grants = everything() - {(GROUP, "computeinstances/status", "patch", "*"), ("coordination.k8s.io", "leases", "watch", "*"),
                             ("coordination.k8s.io", "leases", "delete", "*"), ("storage.k8s.io", "storageclasses", "list", "")}
    problems = [f for f in check_permissions(Reviewer(grants), GROUP) if not f["ok"]]
    assert [p["target"] for p in problems] == ["computeinstances/status.cloudkit.openshift.io in all namespaces",
                                               "leases.coordination.k8s.io in all namespaces", "storageclasses.storage.k8s.io cluster-wide"]
    leases = problems[1]
    assert leases["problem"] == "system:serviceaccount:aap:cloudkit-provisioning may not delete/watch leases in all namespaces"
    assert "{apiGroups: [coordination.k8s.io], resources: [leases], verbs: [delete, watch]}" in leases["fix"]
    assert "ClusterRoleBinding" in leases["fix"]
    assert "resources: [computeinstances/status], verbs: [patch]" in problems[0]["fix"]


def test_namespaces_are_checked_one_by_one():
    grants = {g for g in everything("tenants") if g[3] in ("tenants", "")} | {g for g in everything("acme") if g[3] == "acme"}
    reviewer = Reviewer(grants, reviews=False)
    findings = check_permissions(reviewer, GROUP, instance_namespaces=["tenants"], target_namespaces=["acme", "other"])
    problems = [f for f in findings if not f["ok"]]
    assert problems and all("in namespace other" in p["target"] for p in problems)
    assert all(p["problem"].startswith("the job's credential may not") and "a RoleBinding in other" in p["fix"] for p in problems)
    assert ("", "secrets", "create", "acme") in reviewer.asked and (GROUP, "computeinstances", "get", "tenants") in reviewer.asked
    assert not any(key[3] == "acme" and key[1] == "leases" for key in reviewer.asked), "leases are checked where instances live"


# -- the operator's Deployment ------------------------------------------------------------------------------------


def operator(fake, env, env_from=(), secrets=None, config_maps=None):
    from ansible_collections.cloudkit.provisioning.plugins.module_utils.preflight import CONFIG_MAP, DEPLOYMENT, SECRET

    for name, data in (secrets or {}).items():
        fake.put(SECRET, {"metadata": {"name": name, "namespace": "op"},
                          "data": dict((k, base64.b64encode(v.encode()).decode()) for k, v in data.items())})
    for name, data in (config_maps or {}).items():
        fake.put(CONFIG_MAP, {"metadata": {"name": name, "namespace": "op"}, "data": data})
    container = {"name": "manager", "image": "x", "env": env, "envFrom": list(env_from)}
    return fake.put(DEPLOYMENT, {"metadata": {"name": "operator", "namespace": "op"}, "spec": {"template": {"spec": {"containers": [container]}}}})


def test_the_environment_resolves_secrets_and_config_maps_without_showing_secret_values(fake):
    deployment = operator(fake, [
        {"name": "CLOUDKIT_PROVISIONING_PROVIDER", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "provider"}}},
        {"name": "CLOUDKIT_AAP_TOKEN", "valueFrom": {"secretKeyRef": {"name": "aap", "key": "token"}}},
        {"name": "CLOUDKIT_AAP_URL", "value": "https://aap/api/controller"},
        {"name": "CLOUDKIT_MISSING", "valueFrom": {"secretKeyRef": {"name": "aap", "key": "nope"}}},
    ], env_from=[{"secretRef": {"name": "more"}, "prefix": "CLOUDKIT_"}],
        secrets={"aap": {"token": "s3cret"}, "more": {"AAP_PROVISION_TEMPLATE": "mine-create"}}, config_maps={"settings": {"provider": "aap"}})
    env = preflight.operator_environment(fake, deployment)
    assert env["CLOUDKIT_PROVISIONING_PROVIDER"].value == "aap" and not env["CLOUDKIT_PROVISIONING_PROVIDER"].from_secret
    assert env["CLOUDKIT_AAP_TOKEN"].value == "s3cret"
    assert env["CLOUDKIT_AAP_TOKEN"].shown() == "(from Secret op/aap key token)" and "s3cret" not in repr(env["CLOUDKIT_AAP_TOKEN"])
    assert env["CLOUDKIT_AAP_PROVISION_TEMPLATE"].value == "mine-create" and env["CLOUDKIT_AAP_PROVISION_TEMPLATE"].from_secret
    assert env["CLOUDKIT_MISSING"].problem == "Secret op/aap has no key nope"


def test_the_prefix_is_the_one_that_selects_the_provider():
    assert preflight._prefix_of({"OSAC_PROVISIONING_PROVIDER": 1, "CLOUDKIT_AAP_URL": 1, "CLOUDKIT_AAP_TOKEN": 1}) == "OSAC"
    assert preflight._prefix_of({"CLOUDKIT_AAP_URL": 1}) == "CLOUDKIT"
    assert preflight._prefix_of({"HOME": 1}) is None


def test_aap_direct_without_url_and_with_a_token_in_clear_reports_both_and_asks_nothing(fake):
    deployment = operator(fake, [{"name": "CLOUDKIT_PROVISIONING_PROVIDER", "value": "aap"}, {"name": "CLOUDKIT_AAP_TOKEN", "value": "t0ken"}])
    asked = []
    findings, facts = preflight.check_operator(fake, "op", deployment["metadata"]["name"], GROUP, None, "innabox-aap-eda-api", "innabox",
                                               ["a", "b"], lambda url, token: asked.append(url))
    problems = [f["problem"] for f in findings if not f["ok"]]
    assert problems == ["CLOUDKIT_AAP_URL is not set", "the token is written in the Deployment itself"]
    assert asked == [], "no controller to ask without a URL"
    assert facts["provider"] == "aap" and facts["variables"]["CLOUDKIT_AAP_TOKEN"] == "(set in the Deployment, not shown)"
