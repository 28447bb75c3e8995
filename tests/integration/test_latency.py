"""The latency report (playbooks/latency_report.yml) against phase durations injected through the stand-ins.

The controller stand-in holds each job `waiting` for LAUNCH seconds, the KubeVirt stand-in takes IMPORT seconds to
import a DataVolume and BOOT seconds to boot a VMI, and the test holds the instance's lock until RELEASE seconds
after the job's lock task began (as its output shows). The report must find each within TOLERANCE seconds, judged by the
controller's own job records, the test's clock and the API's objects, never by the product's arithmetic alone.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kubernetes import client

from ansible_collections.cloudkit.provisioning.plugins.module_utils.aap import ControllerClient
from tests.integration.instances import envelope
from tests.stack.local import LocalStack

ROOT = Path(__file__).resolve().parents[2]
LAUNCH, IMPORT, BOOT, RELEASE = 2.0, 2.0, 1.5, 2.0
# Watches, the stand-ins' reaction and module start-up on a shared 2-CPU machine: each injected phase within a second.
TOLERANCE = 1.0
ORG = "innabox"
LEGACY_TEMPLATE = "legacy-create-compute-instance"
PROVISION_REASONS = {"JobStarted", "LockWaitBegun", "LockAcquired", "VirtualMachineApplied", "DataVolumeImported",
                     "VirtualMachineReady", "StatusWritten", "LockReleased"}
DEPROVISION_REASONS = {"JobStarted", "DeletionRequested", "LockWaitBegun", "LockAcquired", "VirtualMachineDeleted",
                       "FinalizerRemoved", "LockReleased"}


def when(text):
    return datetime.datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z") if "." in text else \
        datetime.datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S%z")


def utc(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)


@pytest.fixture
def stack(tmp_path, kube, kubevirt):
    """The controller stand-in running this collection's playbooks against the API under test (no rulebook), plus a template
    whose playbook records no phase Events (a job of an older version); the injected delays are undone afterwards."""
    kube.require_local()
    with LocalStack(tmp_path / "stack", kubeconfig=kube.kubeconfig, rulebook=False, api=kube.backend,
                    job_vars={"compute_instance_wait_timeout": 60}) as local:
        local.controller.add_template({"name": LEGACY_TEMPLATE, "organization": ORG, "type": "job",
                                       "playbook": str(ROOT / "tests" / "integration" / "playbooks" / "legacy_provision_job.yml"),
                                       "allow_simultaneous": True, "ask_variables_on_launch": True})
        delays = (kubevirt.import_delay, kubevirt.ready_delay)
        try:
            yield local
        finally:
            kubevirt.import_delay, kubevirt.ready_delay = delays


def launch(stack, template, instance):
    controller = ControllerClient(stack.controller.gateway_url, token=stack.controller.token)
    return controller.launch(controller.find_template(template, ORG), envelope(instance))["id"]


def finished(stack, job_id):
    status = stack.controller.wait_status(job_id, ("successful", "failed", "error", "canceled"), timeout=150)
    assert status == "successful", stack.controller.job(job_id)["stdout"][-4000:]
    return stack.controller.job(job_id)


def report(stack, tmp_path, kube, fmt="json", **extra_vars):
    """Run playbooks/latency_report.yml as a job would; returns the parsed output file (JSON) or its text (CSV)."""
    output = tmp_path / ("report.%s" % fmt)
    variables = dict(extra_vars, format=fmt, output=str(output))
    environment = dict(os.environ, K8S_AUTH_KUBECONFIG=kube.kubeconfig, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".build"),
                       ANSIBLE_NOCOLOR="1", CONTROLLER_HOST=stack.controller.gateway_url,
                       CONTROLLER_OAUTH_TOKEN=stack.controller.token)
    command = [str(Path(sys.executable).with_name("ansible-playbook")), str(ROOT / "playbooks" / "latency_report.yml"),
               "-e", json.dumps(variables)]
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    text = output.read_text()
    return json.loads(text) if fmt == "json" else text


def hold_lock(api_client, instance, holder):
    """Take the instance's Lease as another job would (the Lease a job of this collection waits on)."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    body = {"metadata": {"name": "computeinstance-" + instance["metadata"]["uid"]},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 120, "acquireTime": now, "renewTime": now}}
    client.CoordinationV1Api(api_client).create_namespaced_lease(instance["metadata"]["namespace"], body)


def our_events(api_client, namespace, uid):
    items = client.CoreV1Api(api_client).list_namespaced_event(namespace).items
    return [e for e in items if e.involved_object.uid == uid and e.reporting_component == "cloudkit-provisioning"
            and e.action in ("Provision", "Deprovision")]


def test_report_finds_the_injected_phases(stack, kubevirt, operator, namespace, api_client, kube, tmp_path):
    kubevirt.import_delay, kubevirt.ready_delay = IMPORT, BOOT
    stack.controller.waiting_delay = LAUNCH
    instance = operator.create(namespace, "slow1", {"cpu_cores": 1})
    holder = "job-900@elsewhere.example.com"
    hold_lock(api_client, instance, holder)
    job_id = launch(stack, stack.template_name("create"), instance)
    deadline = time.monotonic() + 120
    while "Take the instance's lock" not in stack.controller.job(job_id)["stdout"]:
        assert time.monotonic() < deadline, stack.controller.job(job_id)["stdout"][-3000:]
        time.sleep(0.05)
    lock_task = utc(time.time())
    time.sleep(RELEASE)
    released = utc(time.time())
    client.CoordinationV1Api(api_client).delete_namespaced_lease("computeinstance-" + instance["metadata"]["uid"], namespace)
    job = finished(stack, job_id)
    stack.controller.waiting_delay = 0.1

    uid = instance["metadata"]["uid"]
    reasons = sorted(e.reason for e in our_events(api_client, namespace, uid))
    assert set(reasons) == PROVISION_REASONS and len(reasons) == len(PROVISION_REASONS), reasons

    got = report(stack, tmp_path, kube, instance="slow1", instance_namespace=namespace, since="10m")
    runs = [run for run in got["runs"] if run["run"] == "provision"]
    assert len(runs) == 1, got
    run = runs[0]
    phases = run["phases"]
    assert run["job"]["id"] == job_id and run["mode"] == "AAP Direct" and run["waited_for"] == holder, run
    # The controller's own record: created -> started, and the stand-in held it `waiting` for LAUNCH seconds.
    assert phases["launch"] == pytest.approx((when(job["started"]) - when(job["created"])).total_seconds(), abs=0.01)
    assert LAUNCH <= phases["launch"] <= LAUNCH + TOLERANCE, phases
    # The queue is the instance's creation (the API's own timestamp) to the job's creation (the controller's).
    queued = (when(job["created"]) - when(instance["metadata"]["creationTimestamp"])).total_seconds()
    assert phases["queue"] == pytest.approx(queued, abs=0.01)
    # The lock went when the test released it, not before and not much later.
    acquired = when(run["marks"]["lock_acquired"])
    assert released <= acquired <= released + datetime.timedelta(seconds=TOLERANCE), (released, acquired)
    # It began waiting after its lock task showed in the job's output (less the output's lag), before the release.
    begun = when(run["marks"]["lock_wait_begun"])
    assert lock_task - datetime.timedelta(seconds=TOLERANCE) <= begun <= released, (lock_task, begun, released)
    assert phases["lock_wait"] == pytest.approx((acquired - begun).total_seconds(), abs=0.002)
    assert 0 < phases["lock_wait"] <= RELEASE + TOLERANCE, phases
    assert IMPORT - TOLERANCE <= phases["import"] <= IMPORT + TOLERANCE, phases
    assert BOOT - TOLERANCE / 2 <= phases["boot"] <= BOOT + TOLERANCE, phases
    # The job's startup lies between the controller's start and the job's own end.
    assert 0 < phases["job_startup"] < (when(job["finished"]) - when(job["started"])).total_seconds()
    assert run["slowest"] == max((v, k) for k, v in phases.items() if v is not None)[1]

    # The operator notices: it copies the reconciled version into status (as the operator stand-in does). kube-apiserver
    # keeps the time of that write in managedFields (whole seconds); the stand-in keeps no managedFields.
    time.sleep(1.5)
    live = operator.get(namespace, "slow1")
    observed = utc(time.time())
    client.CustomObjectsApi(api_client).patch_namespaced_custom_object_status(
        "cloudkit.openshift.io", "v1alpha1", namespace, "computeinstances", "slow1",
        {"status": {"reconciledConfigVersion": live["metadata"]["annotations"]["cloudkit.openshift.io/reconciled-config-version"]}})
    run = next(run for run in report(stack, tmp_path, kube, instance="slow1", instance_namespace=namespace, since="10m")["runs"])
    written = when(run["marks"]["status_written"])
    if kube.backend == "kube-apiserver":
        expected = (observed - written).total_seconds()
        assert expected - 1.0 <= run["phases"]["operator_observed"] <= expected + TOLERANCE, (run, observed)
    else:
        assert run["phases"]["operator_observed"] is None and "operator_observed" in run["missing"]
        assert any("managedFields" in why for why in run["missing_why"]), run

    # The deprovision: requested at the deletionTimestamp the API set.
    custom = client.CustomObjectsApi(api_client)
    custom.delete_namespaced_custom_object("cloudkit.openshift.io", "v1alpha1", namespace, "computeinstances", "slow1")
    deleting = operator.get(namespace, "slow1")
    deletion = when(deleting["metadata"]["deletionTimestamp"])
    delete_job = finished(stack, launch(stack, stack.template_name("delete"), deleting))
    got = report(stack, tmp_path, kube, instance="slow1", instance_namespace=namespace, since="10m")
    deprovision = [run for run in got["runs"] if run["run"] == "deprovision"]
    assert len(deprovision) == 1, got
    assert {e.reason for e in our_events(api_client, namespace, uid) if e.action == "Deprovision"} == DEPROVISION_REASONS
    assert deprovision[0]["phases"]["queue"] == pytest.approx((when(delete_job["created"]) - deletion).total_seconds(), abs=0.01)
    assert deprovision[0]["phases"]["vm_delete"] is not None and deprovision[0]["missing"] == []
    assert [run["run"] for run in got["runs"]] == ["provision", "deprovision"]


def test_runs_without_our_events_show_what_is_known(stack, operator, namespace, api_client, kube, tmp_path):
    never = operator.create(namespace, "never1", {"cpu_cores": 1})
    older = operator.create(namespace, "older1", {"cpu_cores": 1})
    job = finished(stack, launch(stack, LEGACY_TEMPLATE, older))
    assert our_events(api_client, namespace, older["metadata"]["uid"]) == []

    got = report(stack, tmp_path, kube, instance_namespace=namespace, since="10m",
                 provision_template=LEGACY_TEMPLATE)
    by_name = dict((run["instance"]["name"], run) for run in got["runs"])
    assert set(by_name) == {"never1", "older1"}, got

    legacy = by_name["older1"]
    assert legacy["job"]["id"] == job["id"]
    assert legacy["phases"]["launch"] == pytest.approx((when(job["started"]) - when(job["created"])).total_seconds(), abs=0.01)
    assert legacy["phases"]["queue"] is not None
    assert set(legacy["missing"]) == {"job_startup", "lock_wait", "vm_apply", "import", "boot", "bookkeeping", "operator_observed"}
    assert any("no phase Events" in why for why in legacy["missing_why"]), legacy

    unprovisioned = by_name["never1"]
    assert unprovisioned["job"] is None and unprovisioned["mode"] == "hand run"
    assert set(unprovisioned["missing"]) == {"queue", "launch", "job_startup", "lock_wait", "vm_apply", "import", "boot",
                                             "bookkeeping", "operator_observed"}
    assert unprovisioned["marks"]["requested"].startswith(never["metadata"]["creationTimestamp"].rstrip("Z"))
    assert any("no controller job record" in why for why in unprovisioned["missing_why"])

    text = report(stack, tmp_path, kube, fmt="csv", instance_namespace=namespace, since="10m", provision_template=LEGACY_TEMPLATE)
    rows = text.splitlines()
    assert rows[0].startswith("namespace,name,uid,run,mode,job_id") and len(rows) == 3, text
    older_row = next(row for row in rows if ",older1," in row).split(",")
    assert older_row[5] == str(job["id"]) and "import" in older_row[-1]
