"""The jobs with exactly the permissions docs/aap.md tells a cluster administrator to grant, on kube-apiserver's RBAC.

The ClusterRole ``cloudkit-provisioning-jobs`` is read from docs/aap.md itself and bound to a service account; the create
and delete playbooks then run with that service account's token (through the proxy, as any client). Both must succeed: a
permission the jobs need and the guide leaves out shows here as a 403. The stand-in has no authorizer, so the test needs
kube-apiserver.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from tests.integration.conftest import ok
from tests.integration.instances import envelope
from tests.stack import apis

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "aap.md"
GROUP = "cloudkit.openshift.io"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f me@x"


def documented(kind, name):
    """The manifest of `kind`/`name` from the YAML blocks of docs/aap.md."""
    for block in re.findall(r"```yaml\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S):
        for doc in yaml.safe_load_all(block):
            if isinstance(doc, dict) and doc.get("kind") == kind and doc.get("metadata", {}).get("name") == name:
                return doc
    raise AssertionError("docs/aap.md has no %s %s" % (kind, name))


@pytest.fixture
def job_kubeconfig(kube, api_client, tmp_path):
    """A kubeconfig with the token of a service account bound to the guide's ClusterRole (and nothing else)."""
    yield from kubeconfig_with_role(kube, api_client, tmp_path, lambda role: role)


@pytest.fixture
def preflight_kubeconfig(kube, api_client, tmp_path):
    """The jobs' service account, also bound to the guide's preflight ClusterRole, as the guide says to run the preflight."""
    yield from kubeconfig_with_role(kube, api_client, tmp_path, lambda role: role, preflight=True)


@pytest.fixture
def limited_kubeconfig(kube, api_client, tmp_path):
    """As job_kubeconfig, but the guide's ClusterRole lacks the Lease rule's delete and watch, and the status rule."""
    def limit(role):
        for rule in role["rules"]:
            if rule["resources"] == ["leases"]:
                rule["verbs"] = [verb for verb in rule["verbs"] if verb not in ("delete", "watch")]
        role["rules"] = [rule for rule in role["rules"] if rule["resources"] != ["computeinstances/status"]]
        return role
    yield from kubeconfig_with_role(kube, api_client, tmp_path, limit, preflight=True)


def kubeconfig_with_role(kube, api_client, tmp_path, shape, preflight=False):
    if kube.backend != apis.KUBE_APISERVER:
        pytest.skip("needs kube-apiserver's RBAC (CLOUDKIT_TEST_API=kube-apiserver); the stand-in authorizes everything")
    suffix = uuid.uuid4().hex[:8]
    core = client.CoreV1Api(api_client)
    rbac = client.RbacAuthorizationV1Api(api_client)
    sa_namespace = "aap-%s" % suffix
    core.create_namespace({"metadata": {"name": sa_namespace}})
    role = shape(documented("ClusterRole", "cloudkit-provisioning-jobs"))
    binding = documented("ClusterRoleBinding", "cloudkit-provisioning-jobs")
    role["metadata"]["name"] = binding["metadata"]["name"] = binding["roleRef"]["name"] = "cloudkit-provisioning-jobs-" + suffix
    (subject,) = binding["subjects"]
    subject["namespace"] = sa_namespace
    core.create_namespaced_service_account(sa_namespace, {"metadata": {"name": subject["name"]}})
    rbac.create_cluster_role(role)
    rbac.create_cluster_role_binding(binding)
    extra = []
    if preflight:
        extra_role = documented("ClusterRole", "cloudkit-provisioning-preflight")
        extra_role["metadata"]["name"] = "cloudkit-provisioning-preflight-" + suffix
        extra_binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": extra_role["metadata"]["name"]},
                         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": extra_role["metadata"]["name"]},
                         "subjects": [dict(subject)]}
        rbac.create_cluster_role(extra_role)
        rbac.create_cluster_role_binding(extra_binding)
        extra.append(extra_role["metadata"]["name"])
    token = core.create_namespaced_service_account_token(subject["name"], sa_namespace, {"spec": {"expirationSeconds": 3600}}).status.token
    path = tmp_path / "job-kubeconfig"
    kube.server.write_kubeconfig(path)
    config = yaml.safe_load(path.read_text())
    config["users"][0]["user"] = {"token": token}
    path.write_text(yaml.safe_dump(config))
    yield str(path)
    for name in [binding["metadata"]["name"]] + extra:
        rbac.delete_cluster_role_binding(name)
        rbac.delete_cluster_role(name)
    core.delete_namespace(sa_namespace)


def test_create_and_delete_with_the_documented_cluster_role(operator, run_job, namespace, job_kubeconfig):
    instance = operator.create(namespace, "rbac-vm", {"cpu_cores": 2, "ssh_public_key": KEY})
    ok(run_job("create_compute_instance.yml", envelope(instance), kubeconfig=job_kubeconfig))
    live = operator.get(namespace, "rbac-vm")
    assert live["status"]["phase"] == "Ready"
    assert live["metadata"]["annotations"][GROUP + "/reconciled-config-version"] == live["status"]["desiredConfigVersion"]
    operator.delete(namespace, "rbac-vm")
    ok(run_job("delete_compute_instance.yml", envelope(operator.get(namespace, "rbac-vm")), kubeconfig=job_kubeconfig))
    operator.release(namespace, "rbac-vm")  # the operator's own finalizer, as it drops it once the delete job is done
    assert operator.get(namespace, "rbac-vm") is None
    assert operator.objects(operator.vm_namespace, live["metadata"]["uid"]) == []


@pytest.fixture
def run_preflight(tmp_path):
    """Run playbooks/preflight.yml with a kubeconfig (no webhooks, no controller): the CRD and the permissions."""
    import os
    import subprocess
    import sys

    def run(kubeconfig):
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("CONTROLLER_", "K8S_AUTH_"))}
        environment.update(K8S_AUTH_KUBECONFIG=kubeconfig, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".build"), ANSIBLE_NOCOLOR="1")
        command = [str(Path(sys.executable).with_name("ansible-playbook")), str(ROOT / "playbooks" / "preflight.yml"), "-v"]
        result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300, check=False)
        return result.returncode, result.stdout + result.stderr
    return run


def test_preflight_passes_with_the_documented_cluster_roles(preflight_kubeconfig, run_preflight):
    rc, output = run_preflight(preflight_kubeconfig)
    assert rc == 0, output[-4000:]  # the preflight fails on any problem: every permission was granted


def test_preflight_names_each_missing_permission_with_its_rule(limited_kubeconfig, run_preflight):
    """A real RBAC-limited user: the preflight's SelfSubjectAccessReviews find exactly what the role lacks."""
    rc, output = run_preflight(limited_kubeconfig)
    assert rc != 0, output[-4000:]
    assert "may not delete/watch leases in all namespaces" in output
    assert "{apiGroups: [coordination.k8s.io], resources: [leases], verbs: [delete, watch]}" in output
    assert "may not patch computeinstances/status in all namespaces" in output
    assert "{apiGroups: [cloudkit.openshift.io], resources: [computeinstances/status], verbs: [patch]}" in output
    assert "system:serviceaccount:" in output, "the user is named"
    assert "may not get computeinstances" not in output, "a granted permission is not reported"
