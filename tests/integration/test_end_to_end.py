"""End to end: the operator stand-in drives this collection's jobs through EDA (ansible-rulebook) and AAP Direct.

The first tests are `make demo`'s scenario (tests/stack/scenarios.py) in each mode and in the later variant. The
``test_seed_bug_*`` tests are the seed's three defects (docs/contract.md, Upstream defects), each shown twice: it passes
with this collection, and the same check fails on a negative control that behaves as the seed's Ansible side did
(tests/integration/playbooks/upstream/), so the check can fail.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from ansible_collections.cloudkit.provisioning.plugins.module_utils.aap import ControllerClient
from tests.stack import audit
from tests.stack.local import LocalStack
from tests.stack.scenarios import VERSION, Scenario

UPSTREAM = Path(__file__).resolve().parent / "playbooks" / "upstream"
UPSTREAM_TEMPLATES = ("upstream-create-compute-instance", "upstream-delete-compute-instance")
TERMINAL = ("successful", "failed", "error", "canceled")


@pytest.fixture(scope="module")
def stack(tmp_path_factory, kube):
    """The whole local stack, plus two job templates running the seed-like negative controls."""
    kube.require_server()  # overlaps are read from the write log (of the stand-in, or of the proxy in front of kube-apiserver)
    # Jobs wait at most 30 s for a VM or its removal: a held provision is canceled long before, a failed delete fails in time.
    with LocalStack(tmp_path_factory.mktemp("e2e"), ready_delay=2.0, import_delay=0.3, job_vars={"compute_instance_wait_timeout": 30},
                    api=kube.backend) as local:
        upstream = {"upstream_tenant_namespace": "tenant-acme", "upstream_parts": 6, "upstream_api": local.api.url, "upstream_token": local.api.token}
        if getattr(local.api, "ca_file", None):
            upstream["upstream_ca"] = local.api.ca_file
        for template, action in zip(UPSTREAM_TEMPLATES, ("create", "delete")):
            local.controller.add_template({"name": template, "organization": local.organization, "type": "job",
                                           "playbook": str(UPSTREAM / ("%s.yml" % action)), "allow_simultaneous": True,
                                           "ask_variables_on_launch": True, "environment": local.job_environment(),
                                           "extra_vars": upstream})
        yield local


@pytest.fixture
def scenario(stack):
    """A Scenario writing to a buffer (its text is shown when a test fails)."""
    out = io.StringIO()
    played = Scenario(stack, out=out, timeout=180)
    played.prepare()
    yield played
    played.close()
    print(out.getvalue())  # noqa: T201  pytest shows it for a failing test


def converged(results):
    """Assert every step converged with no overlap and nothing left; return the results by (mode, step)."""
    for result in results:
        assert result.converged, result
        assert result.overlaps == 0, result
        assert result.objects_left == 0, result
    return dict(((r.mode, r.step), r) for r in results)


def statuses(result, action):
    """The final statuses of a step's jobs of one action."""
    return [job["status"] for job in result.jobs if job["action"] == action]


def launch(stack, template, instance, **extra_vars):
    """Launch a template as EDA's run_job_template does (ansible_eda.event.payload is the instance); returns the job id."""
    client = ControllerClient(stack.controller.gateway_url, token=stack.controller.token)
    variables = dict(extra_vars, ansible_eda={"event": {"payload": instance}})
    return client.launch(client.find_template(template, stack.organization), variables)["id"]


def wait_job(stack, job_id):
    """The job's final status."""
    return stack.controller.wait_status(job_id, TERMINAL, timeout=180)


# ------------------------------------------------------------------ the demo's scenario, in the later variant
# (tests/integration/test_demo.py runs `make demo` itself: EDA and AAP Direct in the seed variant)


def test_demo_scenario_later_variant(stack):
    """The later operator: osac.openshift.io, status.jobs[], the osac_job_vars envelope."""
    out = io.StringIO()
    scenario = Scenario(stack, group="osac.openshift.io", namespace="osac-demo", tenant_namespace="tenant-osac", out=out, timeout=180)
    scenario.prepare()
    try:
        scenario.use_operator("aap", variant="later")
        steps = converged([scenario.create("e2e-later")])
        launched = [e for e in scenario.operator_history if e["action"] == "launch" and e.get("name") == "e2e-later"]
        assert launched and all(e["envelope"] == "osac_job_vars" for e in launched)
        # The operator records the job's end on its next poll, which may come after the step saw the job end.
        watch = scenario.watch()
        try:
            recorded = watch.until("e2e-later", lambda live: live is not None and
                                   [job["state"] for job in live.get("status", {}).get("jobs", [])] == ["Succeeded"], timeout=60)
        finally:
            watch.stop()
        assert recorded, scenario.get("e2e-later").get("status", {}).get("jobs")
        steps = converged([scenario.delete_during_provision("e2e-later", memory="4Gi")])
        assert statuses(steps[("AAP Direct", "delete during provision")], "deprovision") == ["successful"]
    finally:
        scenario.close()
        print(out.getvalue())  # noqa: T201


# ------------------------------------------------------------------ the seed's three defects


def test_seed_bug_concurrent_provision_and_deprovision(scenario, stack):
    """Seed jobs 7265/7267 (EDA): a deprovision started while the provision ran. Here it never does; the seed's jobs overlap.

    (AAP Direct, where the operator cancels the provision itself, is in test_demo.py.)
    """
    scenario.use_operator("eda")
    scenario.create("bug1-eda")
    result = scenario.delete_during_provision("bug1-eda", memory="4Gi")
    assert result.converged and result.overlaps == 0 and result.objects_left == 0, result
    # The provision ended before the deprovision wrote: canceled by the delete job, or (usually, being faster)
    # it saw the deletionTimestamp at its next step and stood aside, failing without writing Ready.
    assert statuses(result, "provision") in (["canceled"], ["failed"]), "the provision did not end before the deprovision"
    assert statuses(result, "deprovision") == ["successful"]

    # Negative control: the seed's jobs, a delete arriving while the create still creates objects.
    scenario.close()
    created = scenario.create_instance("bug1-seed", finalizers=[scenario.group + "/computeinstance"])
    create_job = launch(stack, UPSTREAM_TEMPLATES[0], created)
    deadline = time.monotonic() + 120
    while not audit.job_writes(stack.api.write_log(), create_job) and time.monotonic() < deadline:
        time.sleep(0.2)
    scenario.delete_instance("bug1-seed")
    delete_job = launch(stack, UPSTREAM_TEMPLATES[1], scenario.get("bug1-seed"))
    wait_job(stack, create_job)
    wait_job(stack, delete_job)
    seed_jobs = [j for j in audit.job_records(stack.controller, *UPSTREAM_TEMPLATES) if j.uid == created["metadata"]["uid"]]
    assert audit.overlaps(stack.api.write_log(), seed_jobs), "the check cannot see the seed's overlap"
    assert audit.objects_left(scenario.api_client, scenario.group, created["metadata"]["uid"], scenario.namespace), \
        "the seed's create should have left objects behind"
    _clean_up(scenario, "bug1-seed", created["metadata"]["uid"])


@pytest.mark.parametrize("mode", ["eda", "aap"])
def test_seed_bug_missing_reconciled_version(scenario, stack, mode):
    """After a successful provision the annotation equals the desired version, so the operator counts it done.

    A freshly started operator looks at every instance at once: a reconciled one gets nothing more; the seed's
    instance (annotation "unknown") is provisioned again, and again.
    """
    name = "bug2-%s" % mode
    scenario.use_operator(mode)
    result = scenario.create(name)
    assert result.converged, result
    live = scenario.get(name)
    annotation = live["metadata"]["annotations"][scenario.group + "/reconciled-config-version"]
    assert annotation == live["status"]["desiredConfigVersion"] == live["status"]["reconciledConfigVersion"]
    scenario.use_operator(mode, resend_after=1.0)
    time.sleep(4)
    assert _sends(scenario.operator.history, live["metadata"]["uid"]) == 0, scenario.operator.history
    if mode == "aap":
        # Negative control: the seed's create succeeds but writes "unknown".
        scenario.use_operator("aap", templates=UPSTREAM_TEMPLATES)
        uid = scenario.create_instance("bug2-seed")["metadata"]["uid"]
        deadline = time.monotonic() + 180
        while not [j for j in scenario.jobs_of(uid) if j.status in TERMINAL] and time.monotonic() < deadline:
            time.sleep(0.5)
        assert [j.status for j in scenario.jobs_of(uid)] == ["successful"]
        scenario.use_operator("aap", resend_after=1.0, templates=UPSTREAM_TEMPLATES)
        deadline = time.monotonic() + 60
        while not _sends(scenario.operator.history, uid) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _sends(scenario.operator.history, uid), "the check cannot see the seed's endless re-provisioning"
        assert scenario.get("bug2-seed")["metadata"]["annotations"][scenario.group + "/reconciled-config-version"] == "unknown"
        scenario.close()
        stack.controller.wait_idle(180)
        _clean_up(scenario, "bug2-seed", uid)


def test_seed_bug_delete_never_signals_completion(scenario, stack):
    """The seed's failed delete kept the finalizer and said nothing, so the operator waited forever.

    Here a delete either lets the instance go, or, when it fails with blockDeletionOnFailure, says so on the instance.
    """
    scenario.use_operator("eda")
    scenario.create("bug3-ok")
    scenario.create("bug3-fail")
    # The VM's disk cannot go away (a finalizer of someone else): the delete fails after its wait.
    scenario.custom.patch_namespaced_custom_object("cdi.kubevirt.io", "v1beta1", scenario.tenant_namespace, "datavolumes",
                                                   "bug3-fail-root-disk", {"metadata": {"finalizers": ["e2e.test/hold"]}})
    for name in ("bug3-ok", "bug3-fail"):
        scenario.delete_instance(name)
    deadline = time.monotonic() + 180
    while not all(_delete_signalled(scenario.get(n)) for n in ("bug3-ok", "bug3-fail")) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert scenario.get("bug3-ok") is None
    failed = scenario.get("bug3-fail")
    assert _delete_signalled(failed), failed
    condition = next(c for c in failed["status"]["conditions"] if c["type"] == "Deleting")
    assert condition["status"] == "False" and condition["reason"] == "DeprovisionFailed" and condition["message"]
    # Let the disk go and run the delete again, so the instance leaves nothing behind.
    scenario.custom.patch_namespaced_custom_object("cdi.kubevirt.io", "v1beta1", scenario.tenant_namespace, "datavolumes",
                                                   "bug3-fail-root-disk", {"metadata": {"finalizers": None}})
    assert wait_job(stack, launch(stack, stack.template_name("delete"), failed)) == "successful"

    # Negative control: the seed's delete stops half-way and says nothing.
    scenario.close()
    created = scenario.create_instance("bug3-seed", finalizers=[scenario.group + "/computeinstance", scenario.group + "/computeinstance-aap"])
    scenario.delete_instance("bug3-seed")
    assert wait_job(stack, launch(stack, UPSTREAM_TEMPLATES[1], scenario.get("bug3-seed"), upstream_fail=True)) == "failed"
    assert not _delete_signalled(scenario.get("bug3-seed")), "the check cannot see the seed's silent failed delete"
    _clean_up(scenario, "bug3-seed", created["metadata"]["uid"])


# ------------------------------------------------------------------ helpers


def _sends(history, uid):
    """How many times an operator sent (EDA) or launched (AAP) a provision for the instance."""
    return len([e for e in history if e.get("uid") == uid and (
        (e["action"] == "webhook" and e.get("kind") == "create" and e.get("sent")) or (e["action"] == "launch" and e.get("type") == "provision"))])


def _delete_signalled(obj):
    """The operator can tell a delete is over: the instance is gone, or it says the deprovision failed."""
    if obj is None:
        return True
    status = obj.get("status") or {}
    return status.get("phase") == "Failed" and any(
        c["type"] == "Deleting" and c["status"] == "False" and c.get("message") for c in status.get("conditions") or [])


def _clean_up(scenario, name, uid):
    """Remove what a negative control left: its objects and every finalizer."""
    for obj in audit.objects_left(scenario.api_client, scenario.group, uid, scenario.namespace):
        kind, namespace, object_name = obj.split("/")
        if kind == "Secret":
            scenario.core.delete_namespaced_secret(object_name, namespace)
    if scenario.get(name) is not None:
        scenario.custom.patch_namespaced_custom_object(scenario.group, VERSION, scenario.namespace, "computeinstances", name,
                                                       {"metadata": {"finalizers": None}})
        if scenario.get(name) is not None:
            scenario.delete_instance(name)
