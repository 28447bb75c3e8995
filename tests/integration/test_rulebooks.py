"""The rulebooks under real ansible-rulebook, with the AAP controller stand-in running the job templates."""

from __future__ import annotations

import json
import signal
import time

from tests.integration.instances import Operator
from tests.integration.webhooks import PATIENCE, SECRET, TOKEN, free_port, output, post, wait_for

GROUP = "cloudkit.openshift.io"
# The fixtures `controller` (the controller stand-in with the two templates the rulebooks launch) and
# `rulebook` (ansible-rulebook on one of rulebooks/) are in conftest.py.


def instance(name, uid, deleting=False, generation=1, resource_version="7", desired="abc", phase=None):
    metadata = {"name": name, "namespace": "tenants", "uid": uid, "resourceVersion": resource_version, "generation": generation,
                "finalizers": [GROUP + "/computeinstance", GROUP + "/computeinstance-aap"]}
    if deleting:
        metadata["deletionTimestamp"] = "2026-02-01T10:00:00Z"
    status = {"desiredConfigVersion": desired}
    if phase:
        status["phase"] = phase
    return {"apiVersion": GROUP + "/v1alpha1", "kind": "ComputeInstance", "metadata": metadata,
            "spec": {"templateID": "cloudkit.templates.ocp_virt_vm"}, "status": status}


def start_webhook(rulebook, secrets):
    """ansible-rulebook on the webhook rulebook, the secrets given as environment variables; its port once it answers."""
    port = free_port()
    process = rulebook("compute_instance_webhook.yml", {"webhook_host": "127.0.0.1", "webhook_port": port},
                       env=secrets, env_vars=tuple(secrets))
    wait_for(lambda: process.poll() is not None or post(port, "create-compute-instance", {}, token=None) == 401, "the webhook to listen")
    assert process.poll() is None, output(process)
    return port


def launched(controller):
    """(template name, instance name, rule) of each job, oldest first."""
    found = []
    for job in controller.jobs():
        eda = json.loads(job["extra_vars"])["ansible_eda"]
        found.append((job["name"], eda["event"]["payload"]["metadata"]["name"], eda["rule"]))
    return found


def test_webhook_authenticates_and_launches_the_right_templates(rulebook, controller):
    port = start_webhook(rulebook, {"webhook_token": TOKEN, "webhook_hmac_secret": SECRET})

    body = instance("vm1", "u-1")
    assert post(port, "create-compute-instance", body, token=None) == 401
    assert post(port, "create-compute-instance", body, token="wrong") == 401
    assert post(port, "create-compute-instance", body, secret="wrong") == 401
    assert post(port, "create-compute-instance", body, signature="sha256=" + "0" * 64) == 401
    assert post(port, "create-compute-instance", body, secret=None) == 400  # no signature at all
    assert not controller.jobs(), "a refused request launched a job"

    # Create then, at once, delete of the same instance: both are launched at once (the rules run in parallel;
    # the instance's lock and the delete's cancel keep real jobs apart, see test_end_to_end.py).
    assert post(port, "create-compute-instance", body) == 200
    assert post(port, "delete-compute-instance", instance("vm1", "u-1", deleting=True)) == 200
    # One URL for everything (an AAP event stream): the payload decides.
    assert post(port, "stream", instance("vm2", "u-2")) == 200
    assert post(port, "stream", instance("vm2", "u-2", deleting=True)) == 200
    # The legacy paths.
    assert post(port, "create-vm", instance("vm3", "u-3")) == 200
    assert post(port, "delete-vm", instance("vm3", "u-3")) == 200

    wait_for(lambda: len(controller.jobs()) == 6 and controller.wait_idle(0.1), "six finished jobs")
    create, delete = "innabox-create-compute-instance", "innabox-delete-compute-instance"
    assert sorted(launched(controller)) == [
        (create, "vm1", "Create compute instance"), (create, "vm2", "Create compute instance"), (create, "vm3", "Create compute instance"),
        (delete, "vm1", "Delete compute instance"), (delete, "vm2", "Delete compute instance"), (delete, "vm3", "Delete compute instance"),
    ]
    jobs = controller.jobs()
    assert all(job["status"] == "successful" for job in jobs), [job["stdout"] for job in jobs]
    first = next(json.loads(job["extra_vars"])["ansible_eda"] for job in jobs if job["name"] == create
                 and json.loads(job["extra_vars"])["ansible_eda"]["event"]["payload"]["metadata"]["name"] == "vm1")
    assert first["event"]["payload"] == body
    assert first["event"]["meta"]["endpoint"] == "create-compute-instance"
    # The activation did not wait for one job before launching the next.
    assert any(b["started"] < a["finished"] for a in jobs for b in jobs if a["id"] != b["id"]), "the rules ran one job at a time"


def test_webhook_without_hmac_needs_only_the_token(rulebook, controller):
    port = start_webhook(rulebook, {"webhook_token": TOKEN})
    assert post(port, "create-compute-instance", instance("vm4", "u-4"), token="wrong", secret=None) == 401
    assert post(port, "create-compute-instance", instance("vm4", "u-4"), secret=None) == 200
    wait_for(lambda: len(controller.jobs()) == 1 and controller.wait_idle(0.1), "the create job")
    assert launched(controller) == [("innabox-create-compute-instance", "vm4", "Create compute instance")]


def test_webhook_launches_one_provision_per_instance_version(rulebook, controller):
    """The operator's re-sends of an unreconciled instance launch nothing more; a new spec or a failed provision does."""
    port = start_webhook(rulebook, {"webhook_token": TOKEN})
    sends = [
        ("launched", instance("vm5", "u-5")),
        ("dropped", instance("vm5", "u-5")),  # a POST sent again after a timeout
        ("dropped", instance("vm5", "u-5", resource_version="8", phase="Progressing")),  # re-sent while its job runs
        ("launched", instance("vm5", "u-5", resource_version="9", phase="Failed")),  # the job failed: retried
        ("dropped", instance("vm5", "u-5", resource_version="9", phase="Failed")),
        ("launched", instance("vm5", "u-5", resource_version="11", phase="Failed")),  # failed again
        ("launched", instance("vm5", "u-5", generation=2, resource_version="12", desired="def")),  # a spec change
        ("launched", instance("vm5", "u-5", generation=3, resource_version="13", desired="abc")),  # back to the first spec
        ("launched", instance("vm5", "u-6")),  # a namesake created again
        ("launched", instance("vm5", "u-6", deleting=True)),  # deletes are never dropped
        ("launched", instance("vm5", "u-6", deleting=True, resource_version="14")),
    ]
    for _expected, body in sends:
        assert post(port, "create-compute-instance" if "deletionTimestamp" not in body["metadata"] else "delete-compute-instance",
                    body, secret=None) == 200
    expected = [body for verdict, body in sends if verdict == "launched"]
    wait_for(lambda: len(controller.jobs()) >= len(expected) and controller.wait_idle(0.1), "the jobs")
    # Time for a dropped copy to show up late: the rules run in parallel, the job template lookup is refreshed every 0.3 s.
    time.sleep(2)
    controller.wait_idle(PATIENCE)
    payloads = sorted((json.loads(job["extra_vars"])["ansible_eda"]["event"]["payload"] for job in controller.jobs()), key=json.dumps)
    assert payloads == sorted(expected, key=json.dumps)
    rules = sorted(json.loads(job["extra_vars"])["ansible_eda"]["rule"] for job in controller.jobs())
    assert rules == ["Create compute instance"] * 4 + ["Delete compute instance"] * 2 + ["Provision again after a failure"] * 2


def test_watch_rulebook_provisions_and_deprovisions(rulebook, controller, kube, api_client, namespace):
    operator = Operator(api_client, kube.kubeconfig)
    process = rulebook("compute_instance_watch.yml", {"namespaces": [namespace], "prefix": "innabox", "organization": "innabox"},
                       env={"K8S_AUTH_KUBECONFIG": kube.kubeconfig})
    wait_for(lambda: process.poll() is not None or "Waiting for events" in output(process), "the rulebook to start")
    assert process.poll() is None, output(process)

    created = operator.create(namespace, "vm1")
    wait_for(lambda: controller.jobs() and controller.wait_idle(0.1), "the provision job")
    job = controller.jobs()[0]
    assert job["name"] == "innabox-create-compute-instance" and job["status"] == "successful", job["stdout"]
    event = json.loads(job["extra_vars"])["ansible_eda"]["event"]
    assert event["payload"]["metadata"]["uid"] == created["metadata"]["uid"]
    assert event["action"] == "provision" and event["identity"]["name"] == "vm1"

    # What the provision job does on success: our finalizer and the annotation; then the user deletes it.
    operator.custom.patch_namespaced_custom_object(GROUP, "v1alpha1", namespace, "computeinstances", "vm1", {"metadata": {
        "finalizers": [GROUP + "/computeinstance", GROUP + "/computeinstance-aap"],
        "annotations": {GROUP + "/reconciled-config-version": created["status"]["desiredConfigVersion"]}}})
    operator.delete(namespace, "vm1")
    wait_for(lambda: len(controller.jobs()) == 2 and controller.wait_idle(0.1), "the deprovision job")
    job = controller.jobs()[1]
    assert job["name"] == "innabox-delete-compute-instance" and job["status"] == "successful", job["stdout"]
    assert json.loads(job["extra_vars"])["ansible_eda"]["event"]["payload"]["metadata"]["deletionTimestamp"]

    # Stopping the activation cancels the source, which must close its HTTP session quietly.
    process.send_signal(signal.SIGINT)
    process.wait(PATIENCE)
    log = output(process)
    assert "computeinstances" in log
    for problem in ("Traceback", "Unclosed", "Task was destroyed", "Source error"):
        assert problem not in log, log
