"""Unit tests for the permission check of plugins/module_utils/preflight.py (SelfSubjectAccessReview per verb)."""

from __future__ import annotations

from ansible_collections.cloudkit.provisioning.plugins.module_utils import kube
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
                raise kube.NotFound("the server could not find the requested resource", status=404, reason="NotFound")
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
