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
    if kube.backend != apis.KUBE_APISERVER:
        pytest.skip("needs kube-apiserver's RBAC (CLOUDKIT_TEST_API=kube-apiserver); the stand-in authorizes everything")
    suffix = uuid.uuid4().hex[:8]
    core = client.CoreV1Api(api_client)
    rbac = client.RbacAuthorizationV1Api(api_client)
    sa_namespace = "aap-%s" % suffix
    core.create_namespace({"metadata": {"name": sa_namespace}})
    role = documented("ClusterRole", "cloudkit-provisioning-jobs")
    binding = documented("ClusterRoleBinding", "cloudkit-provisioning-jobs")
    role["metadata"]["name"] = binding["metadata"]["name"] = binding["roleRef"]["name"] = "cloudkit-provisioning-jobs-" + suffix
    (subject,) = binding["subjects"]
    subject["namespace"] = sa_namespace
    core.create_namespaced_service_account(sa_namespace, {"metadata": {"name": subject["name"]}})
    rbac.create_cluster_role(role)
    rbac.create_cluster_role_binding(binding)
    token = core.create_namespaced_service_account_token(subject["name"], sa_namespace, {"spec": {"expirationSeconds": 3600}}).status.token
    path = tmp_path / "job-kubeconfig"
    kube.server.write_kubeconfig(path)
    config = yaml.safe_load(path.read_text())
    config["users"][0]["user"] = {"token": token}
    path.write_text(yaml.safe_dump(config))
    yield str(path)
    rbac.delete_cluster_role_binding(binding["metadata"]["name"])
    rbac.delete_cluster_role(role["metadata"]["name"])
    core.delete_namespace(sa_namespace)


def test_create_and_delete_with_the_documented_cluster_role(operator, run_job, namespace, job_kubeconfig):
    instance = operator.create(namespace, "rbac-vm", {"cpu_cores": 2, "ssh_public_key": "ssh-ed25519 AAAAC3Nza me@x"})
    ok(run_job("create_compute_instance.yml", envelope(instance), kubeconfig=job_kubeconfig))
    live = operator.get(namespace, "rbac-vm")
    assert live["status"]["phase"] == "Ready"
    assert live["metadata"]["annotations"][GROUP + "/reconciled-config-version"] == live["status"]["desiredConfigVersion"]
    operator.delete(namespace, "rbac-vm")
    ok(run_job("delete_compute_instance.yml", envelope(operator.get(namespace, "rbac-vm")), kubeconfig=job_kubeconfig))
    operator.release(namespace, "rbac-vm")  # the operator's own finalizer, as it drops it once the delete job is done
    assert operator.get(namespace, "rbac-vm") is None
    assert operator.objects(operator.vm_namespace, live["metadata"]["uid"]) == []
