"""playbooks/cleanup.yml (computeinstance_cleanup) on the local stack: leftovers found and removed, live jobs left alone.

Every check of "wrote nothing" reads the API's write log, filtered by the user agent of the cleanup run
(`cloudkit.provisioning job/<JOB_ID>`).
"""

from __future__ import annotations

import threading

from kubernetes import client

from ansible_collections.cloudkit.provisioning.plugins.module_utils.aap import ControllerClient
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_resources import contract_resources
from ansible_collections.cloudkit.provisioning.plugins.module_utils.lock import LEASE, controller_key, lease_name
from ansible_collections.cloudkit.provisioning.plugins.module_utils.metadata import set_finalizer
from ansible_collections.cloudkit.provisioning.plugins.module_utils.names import Names
from ansible_collections.cloudkit.provisioning.plugins.module_utils.times import micro_time, utc_now
from tests.integration.conftest import ok, refused
from tests.integration.instances import envelope

GROUP = "cloudkit.openshift.io"
NAMES = Names(GROUP)
OURS = NAMES.finalizer
OPERATORS = NAMES.operator_finalizer
INSTANCES = contract_resources(NAMES)[0]


def cleanup_writes(api, since, job_id):
    """Successful writes made by the cleanup run `job_id` after `since`."""
    marker = "job/%s" % job_id
    return ["%s %s (%s)" % (w["method"], w["path"], w["status"]) for w in api.write_log(since)
            if marker in (w.get("user_agent") or "").split() and w["status"] < 300]


def last_seq(api):
    log = api.write_log()
    return log[-1]["seq"] if log else 0


def run_cleanup(run_job, controller, job_id, **extra_vars):
    env = {"CONTROLLER_HOST": controller.gateway_url, "CONTROLLER_OAUTH_TOKEN": controller.token} if controller else {}
    return run_job("cleanup.yml", extra_vars, job_id=job_id, **env)


def lease(operator, namespace, name, uid, holder):
    """A live Lease as a job holding it leaves it when killed (never released)."""
    now = micro_time(utc_now())
    body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": lease_name(uid), "namespace": namespace, "labels": NAMES.instance_labels(name, uid)},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 600, "acquireTime": now, "renewTime": now}}
    return operator.kube.create(LEASE, body, namespace)


def forget(operator, namespace, name):
    """Delete an instance without its delete job ever running: both finalizers dropped (a deleted namespace's fate)."""
    for finalizer in (OURS, OPERATORS):
        set_finalizer(operator.kube, INSTANCES, name, namespace, finalizer, present=False)
    operator.delete(namespace, name)


def events(api_client, namespace, name):
    return [(e.reason, e.message) for e in client.CoreV1Api(api_client).list_namespaced_event(namespace).items if e.involved_object.name == name]


def test_leftovers_are_reported_by_a_dry_run_then_removed(operator, run_job, namespace, api_client, controller, instrumented_api):
    vm_namespace = operator.vm_namespace
    scope = {"namespaces": [namespace, vm_namespace]}
    # 1. A provisioned instance deleted without its delete job: its VM objects are orphans.
    operator.create(namespace, "gone", {})
    ok(run_job("create_compute_instance.yml", envelope(operator.get(namespace, "gone"))))
    gone_uid = operator.get(namespace, "gone")["metadata"]["uid"]
    assert operator.objects(vm_namespace, gone_uid)
    forget(operator, namespace, "gone")
    # ... re-created under its name: the new one's objects are its own, the old uid's still orphans.
    operator.create(namespace, "gone", {})
    # 2. Being deleted, never provisioned, nothing running: only our finalizer holds it.
    stuck = operator.create(namespace, "stuck", {})
    set_finalizer(operator.kube, INSTANCES, "stuck", namespace, OURS, present=True)
    operator.delete(namespace, "stuck")
    # 3. Leases of killed jobs: one whose job ended on our controller, one purged from it, one of another controller.
    held = operator.create(namespace, "held", {})
    key = controller_key(controller.gateway_url)
    aap_client = ControllerClient(controller.gateway_url, token=controller.token)
    template = aap_client.find_template("innabox-delete-compute-instance", "innabox")
    ended = aap_client.launch(template, {"ansible_eda": {"event": {"payload": held}}})["id"]
    controller.wait_status(ended, ("successful", "failed", "error", "canceled"), timeout=120)
    lease(operator, namespace, "held", held["metadata"]["uid"], "job-%s@%s" % (ended, key))
    purged = operator.create(namespace, "purged", {})
    lease(operator, namespace, "purged", purged["metadata"]["uid"], "job-987654@%s" % key)
    other = operator.create(namespace, "other", {})
    lease(operator, namespace, "other", other["metadata"]["uid"], "job-7@aap.elsewhere.example.com")
    # 4. A running provision job of the instance that is gone (canceled with cancel_jobs).
    template = aap_client.find_template("innabox-create-compute-instance", "innabox")
    old = dict(stuck, metadata=dict(stuck["metadata"], uid=gone_uid, name="gone"))
    running = aap_client.launch(template, {"ansible_eda": {"event": {"payload": old}}, "eda_job_pause": 120})["id"]
    controller.wait_status(running, ("running",), timeout=120)

    since = last_seq(instrumented_api)
    dry = ok(run_cleanup(run_job, controller, "cleanup-dry", cancel_jobs=True, **scope))
    assert cleanup_writes(instrumented_api, since, "cleanup-dry") == [], "a dry run writes nothing"
    for expected in ("VirtualMachine %s/gone" % vm_namespace, "re-created as %s/gone" % namespace, "no longer exists",
                     "remove_finalizer ComputeInstance %s/stuck" % namespace, "which has ended", "job 987654", "another controller",
                     "cancel job %s" % running, "(planned)"):
        assert expected in dry.stdout, (expected, dry.stdout[-5000:])
    assert operator.objects(vm_namespace, gone_uid), "nothing removed by the dry run"
    assert OURS in operator.get(namespace, "stuck")["metadata"]["finalizers"]

    applied = ok(run_cleanup(run_job, controller, "cleanup-apply", apply=True, cancel_jobs=True, **scope))
    assert operator.objects(vm_namespace, gone_uid) == [], applied.stdout[-5000:]
    stuck_now = operator.get(namespace, "stuck")
    assert stuck_now["metadata"]["finalizers"] == [OPERATORS], "ours removed, the operator's kept"
    leases = dict((i["metadata"]["name"], i) for i in operator.kube.list(LEASE, namespace)["items"])
    assert lease_name(held["metadata"]["uid"]) not in leases and lease_name(purged["metadata"]["uid"]) not in leases
    assert lease_name(other["metadata"]["uid"]) in leases, "another controller's holder is left alone"
    assert controller.wait_status(running, ("canceled",), timeout=60) == "canceled"
    new_uid = operator.get(namespace, "gone")["metadata"]["uid"]
    assert operator.get(namespace, "gone")["metadata"]["uid"] != gone_uid and new_uid
    assert any(r == "CleanupFinalizerRemoved" for r, _m in events(api_client, namespace, "stuck"))
    assert any(r == "CleanupDeleted" and "has ended" in m for r, m in events(api_client, namespace, "held"))

    # Nothing left to do: a second run removes nothing.
    since = last_seq(instrumented_api)
    ok(run_cleanup(run_job, controller, "cleanup-again", apply=True, **scope))
    assert cleanup_writes(instrumented_api, since, "cleanup-again") == []


def _repeat_while(thread, run):
    """Run `run(n)` again and again while `thread` is alive (at least once); returns how many runs."""
    count = 0
    while count == 0 or thread.is_alive():
        run(count)
        count += 1
    return count


def test_cleanup_racing_a_live_provision_and_delete_removes_nothing_they_own(operator, run_job, namespace, controller, instrumented_api):
    scope = {"namespaces": [namespace, operator.vm_namespace]}
    operator.create(namespace, "live", {})
    results = {}

    def job(playbook, key):
        results[key] = run_job(playbook, envelope(operator.get(namespace, "live")), job_id="job-%s" % key)

    def cleanups_while(playbook, key):
        """Run `playbook` as a job while cleanups run again and again; the cleanups' successful writes."""
        since = last_seq(instrumented_api)
        worker = threading.Thread(target=job, args=(playbook, key))
        worker.start()
        runs = _repeat_while(worker, lambda n: ok(run_cleanup(run_job, controller, "cleanup-%s%d" % (key[0], n), apply=True, **scope)))
        print("cleanup runs during the %s:" % key, runs)  # noqa: T201
        worker.join()
        ok(results[key])
        return [w for n in range(runs) for w in cleanup_writes(instrumented_api, since, "cleanup-%s%d" % (key[0], n))]

    writes = cleanups_while("create_compute_instance.yml", "provision")
    assert writes == [], "a cleanup during a provision wrote %s" % writes
    uid = operator.get(namespace, "live")["metadata"]["uid"]
    assert operator.objects(operator.vm_namespace, uid), "the provision's objects are all there"

    operator.delete(namespace, "live")
    writes = cleanups_while("delete_compute_instance.yml", "deprovision")
    assert writes == [], "a cleanup during a delete wrote %s" % writes
    # The delete job did its whole work itself: everything gone, our finalizer removed by the job.
    assert operator.objects(operator.vm_namespace, uid) == []
    assert operator.get(namespace, "live")["metadata"]["finalizers"] == [OPERATORS]


def test_bad_input_is_refused_naming_the_field(run_job):
    refused(run_cleanup(run_job, None, "cleanup-bad-ns", namespaces=["Tenants!"]), "namespaces")
    refused(run_cleanup(run_job, None, "cleanup-bad-group", api_group="not a group"), "api_group")
    refused(run_cleanup(run_job, None, "cleanup-no-controller", cancel_jobs=True), "controller_host")
