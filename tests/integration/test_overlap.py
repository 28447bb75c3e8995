"""Provision and deprovision of one instance never overlap (docs/contract.md, Upstream defects: jobs 7265/7267).

A create job whose VM takes seconds to become Ready is running when the
instance is deleted and the delete job starts. From the API server's write log
(every write names its job in the User-Agent) this proves the delete job wrote
nothing until the create job released the instance's lock, and the create job
wrote nothing after the delete took it; and that nothing is left behind.
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.integration.instances import Operator

GROUP = "cloudkit.openshift.io"


@pytest.fixture(scope="module")
def slow_stack(tmp_path_factory, kube):
    """An API of its own (the backend under test) whose VMs take 4 s to become Ready, with a write log to audit."""
    from tests.stack.kubevirt import KubeVirtController

    server = kube.new_api().start()
    kubeconfig = server.write_kubeconfig(tmp_path_factory.mktemp("slow") / "kubeconfig")
    controller = KubeVirtController(kubeconfig, ready_delay=4.0, import_delay=0.2).start()
    yield server, kubeconfig
    controller.stop()
    server.stop()


def successful_writes(log, job):
    return [w for w in log if "job/%s" % job in (w.get("user_agent") or "") and w["status"] < 300]


def test_delete_during_provision_waits_for_the_lock(slow_stack, run_job):
    server, kubeconfig = slow_stack
    import kubernetes

    api_client = kubernetes.config.new_client_from_config(config_file=kubeconfig)
    operator = Operator(api_client, kubeconfig, GROUP)
    operator.ensure_namespace("tenants")
    operator.tenant("tenants", "acme", "tenant-acme")
    instance = operator.create("tenants", "slow-vm", {})
    server.clear_write_log()

    results = {}

    def job(name, playbook, obj):
        extra_vars = {"ansible_eda": {"event": {"payload": obj}}, "awx_job_id": name}
        results[name] = run_job(playbook, extra_vars, job_id=name, kubeconfig=kubeconfig)

    create = threading.Thread(target=job, args=("create", "create_compute_instance.yml", instance))
    create.start()
    deadline = time.monotonic() + 60
    while not any(w["kind"] == "virtualmachines" and w["method"] == "POST" for w in server.write_log()):
        assert time.monotonic() < deadline, "the create job never created the VM"
        time.sleep(0.1)
    deleted_at = time.time()
    operator.delete("tenants", "slow-vm")
    delete = threading.Thread(target=job, args=("delete", "delete_compute_instance.yml", operator.get("tenants", "slow-vm")))
    delete.start()
    create.join(300)
    delete.join(300)
    # The create sees the deletionTimestamp at its next step and stands aside (it fails, writing no Ready);
    # the delete then runs to the end.
    assert results["delete"].returncode == 0, results["delete"].stdout[-5000:]
    assert results["create"].returncode != 0 and "being deleted" in results["create"].stdout, results["create"].stdout[-5000:]

    log = server.write_log()
    create_writes = successful_writes(log, "create")
    delete_writes = successful_writes(log, "delete")
    create_release = max(w["seq"] for w in create_writes if w["kind"] == "leases" and w["method"] == "DELETE")
    delete_acquire = min(w["seq"] for w in delete_writes if w["kind"] == "leases" and w["method"] in ("POST", "PUT"))
    assert delete_acquire > create_release, "the delete job took the lock only after the create job released it"
    delete_work = [w for w in delete_writes if w["kind"] != "leases"]
    create_work = [w for w in create_writes if w["kind"] != "leases"]
    assert delete_work and create_work
    assert min(w["seq"] for w in delete_work) > create_release, "no deprovision write while the create job held the lock"
    assert max(w["seq"] for w in create_work) < delete_acquire, "no provision write after the delete job took the lock"
    assert any(w["kind"] == "virtualmachines" and w["method"] == "DELETE" for w in delete_work)
    # Its Progressing report came before the VM was created: a status write after the delete began would be Ready.
    assert not [w for w in create_work if w["kind"] == "computeinstances" and w["time"] >= deleted_at], "no Ready on a deleting instance"

    uid = instance["metadata"]["uid"]
    assert operator.objects("tenant-acme", uid) == [], "nothing orphaned"
    operator.release("tenants", "slow-vm")
    assert operator.get("tenants", "slow-vm") is None
