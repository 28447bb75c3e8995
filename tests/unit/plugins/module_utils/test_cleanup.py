"""Unit tests for plugins/module_utils/cleanup.py: what is a leftover, what is kept, and the guards of each removal."""

from __future__ import annotations

import datetime

from ansible_collections.cloudkit.provisioning.plugins.module_utils import cleanup
from ansible_collections.cloudkit.provisioning.plugins.module_utils.envelope import Identity
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_resources import contract_resources
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kubevirt import SECRET, VIRTUAL_MACHINE
from ansible_collections.cloudkit.provisioning.plugins.module_utils.lock import LEASE, lease_name
from ansible_collections.cloudkit.provisioning.plugins.module_utils.names import Names

NAMES = Names()
CONTROLLER = "https://aap.example.com/api/controller"
INSTANCE = contract_resources(NAMES)[0]


def stamp(seconds_ago):
    moment = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds_ago)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def instance(name="vm1", uid="u-1", namespace="tenants", finalizers=None, deleting=False):
    metadata = {"name": name, "namespace": namespace, "uid": uid, "finalizers": list(finalizers or [])}
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"apiVersion": NAMES.api_version, "kind": "ComputeInstance", "metadata": metadata}


def labelled(kind, name, uid, instance_name="vm1", namespace="tenant-acme"):
    return {"kind": kind, "metadata": {"name": name, "namespace": namespace, "uid": "obj-" + name,
                                       "labels": NAMES.instance_labels(instance_name, uid)}}


def lease(uid, holder, renewed_seconds_ago=0, duration=60):
    return {"kind": "Lease", "metadata": {"name": lease_name(uid), "namespace": "tenants", "uid": "lease-" + uid,
                                          "labels": NAMES.instance_labels("vm1", uid)},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration, "renewTime": stamp(renewed_seconds_ago)}}


# -- VM objects -------------------------------------------------------------------


def test_an_object_of_an_existing_instance_is_no_orphan():
    assert cleanup.orphan_reason(labelled("VirtualMachine", "vm1", "u-1"), NAMES, cleanup.Instances([instance()])) is None


def test_an_object_of_a_gone_instance_is_an_orphan():
    reason, evidence = cleanup.orphan_reason(labelled("VirtualMachine", "vm1", "u-old"), NAMES, cleanup.Instances([]))
    assert "no longer exists" in reason and evidence["instance_uid"] == "u-old"


def test_an_object_of_a_recreated_namesake_is_an_orphan_naming_the_new_one():
    reason, evidence = cleanup.orphan_reason(labelled("VirtualMachine", "vm1", "u-old"), NAMES, cleanup.Instances([instance(uid="u-new")]))
    assert "re-created" in reason and "u-new" in reason and evidence["namesakes"] == ["tenants/vm1 (uid u-new)"]


def test_an_unlabelled_object_is_never_an_orphan():
    assert cleanup.orphan_reason({"kind": "Secret", "metadata": {"name": "x", "labels": {}}}, NAMES, cleanup.Instances([])) is None


def test_a_lease_is_known_by_its_name_when_its_labels_are_gone():
    assert cleanup.instance_uid_of({"kind": "Lease", "metadata": {"name": "computeinstance-u-9"}}, NAMES) == "u-9"


# -- Leases -----------------------------------------------------------------------


def test_a_lease_whose_job_ended_on_our_controller_is_deleted_even_while_its_instance_exists():
    verdict, reason = cleanup.lease_decision(lease("u-1", "job-7@aap.example.com"), instance(), 7, "failed", CONTROLLER)
    assert verdict == "delete" and "job 7" in reason and "failed" in reason


def test_a_lease_whose_job_was_purged_has_ended():
    assert cleanup.lease_decision(lease("u-1", "job-7@aap.example.com"), instance(), 7, cleanup.PURGED, CONTROLLER)[0] == "delete"


def test_a_live_job_keeps_its_lease_while_its_instance_exists():
    assert cleanup.lease_decision(lease("u-1", "job-7@aap.example.com"), instance(), 7, "running", CONTROLLER) is None


def test_a_running_job_keeps_the_lease_of_a_gone_instance():
    verdict, reason = cleanup.lease_decision(lease("u-1", "job-7@aap.example.com"), None, 7, "running", CONTROLLER)
    assert verdict == "keep" and "running" in reason


def test_a_lapsed_lease_of_a_gone_instance_is_deleted():
    verdict, reason = cleanup.lease_decision(lease("u-1", "run-x@host", renewed_seconds_ago=120), None, None, None, CONTROLLER)
    assert verdict == "delete" and "lapsed" in reason


def test_a_live_hand_run_keeps_the_lease_of_a_gone_instance():
    assert cleanup.lease_decision(lease("u-1", "run-x@host"), None, None, None, CONTROLLER)[0] == "keep"


def test_another_controllers_holder_is_kept_and_said_so():
    verdict, reason = cleanup.lease_decision(lease("u-1", "job-7@other.example.com"), instance(), None, None, CONTROLLER)
    assert verdict == "keep" and "another controller" in reason and "aap.example.com" in reason


# -- our finalizer ----------------------------------------------------------------


def test_the_finalizer_goes_only_when_nothing_may_still_act():
    stuck = instance(finalizers=[NAMES.operator_finalizer, NAMES.finalizer], deleting=True)
    assert cleanup.finalizer_decision(stuck, NAMES, [], [], True, True)[0] == "remove_finalizer"
    assert cleanup.finalizer_decision(stuck, NAMES, [], [{"id": 9, "status": "pending"}], True, True)[0] == "keep"
    assert cleanup.finalizer_decision(stuck, NAMES, [{"kind": "VirtualMachine", "namespace": "t", "name": "vm1"}], [], True, True)[0] == "keep"
    assert cleanup.finalizer_decision(stuck, NAMES, [], [], False, True)[0] == "keep"
    verdict, reason = cleanup.finalizer_decision(stuck, NAMES, [], [], True, False)
    assert verdict == "keep" and "controller" in reason


def test_no_finalizer_decision_for_an_instance_not_being_deleted_or_without_ours():
    assert cleanup.finalizer_decision(instance(finalizers=[NAMES.finalizer]), NAMES, [], [], True, True) is None
    assert cleanup.finalizer_decision(instance(finalizers=[NAMES.operator_finalizer], deleting=True), NAMES, [], [], True, True) is None


def test_a_lease_is_free_when_lapsed_or_its_job_ended():
    assert cleanup.lease_is_free(None, None)
    assert cleanup.lease_is_free(lease("u-1", "run-x@h", renewed_seconds_ago=120), None)
    assert cleanup.lease_is_free(lease("u-1", "job-7@aap.example.com"), "canceled")
    assert not cleanup.lease_is_free(lease("u-1", "job-7@aap.example.com"), "running")


# -- jobs -------------------------------------------------------------------------


def test_a_job_is_canceled_only_when_its_instance_is_gone():
    instances = cleanup.Instances([instance()])
    assert cleanup.cancel_reason(Identity("vm1", "tenants", "u-1", None, "x", {}), instances) is None
    assert "no longer exists" in cleanup.cancel_reason(Identity("vm1", "tenants", "u-old", None, "x", {}), instances)
    assert cleanup.cancel_reason(Identity("vm1", "tenants", None, None, "x", {}), instances) is None
    assert cleanup.cancel_reason(Identity("vm1", "elsewhere", None, None, "x", {}), instances) is not None


# -- a whole run on the fake API ----------------------------------------------------


def populated(fake):
    fake.put(INSTANCE, instance(uid="u-1"))
    fake.put(VIRTUAL_MACHINE, labelled("VirtualMachine", "vm1", "u-1"))
    fake.put(VIRTUAL_MACHINE, labelled("VirtualMachine", "old", "u-old", instance_name="old"))
    fake.put(SECRET, labelled("Secret", "old-cloud-init", "u-old", instance_name="old"))
    fake.put(LEASE, lease("u-old", "run-x@host", renewed_seconds_ago=300))
    fake.put(LEASE, lease("u-1", "run-y@host"))


def test_a_dry_run_writes_nothing_and_reports_each_leftover(fake):
    populated(fake)
    report = cleanup.Cleanup(fake, NAMES).run()
    assert fake.writes == []
    assert sorted((a["action"], a["target"]["kind"], a["target"]["name"]) for a in report["actions"]) == [
        ("delete", "Lease", lease_name("u-old")), ("delete", "Secret", "old-cloud-init"), ("delete", "VirtualMachine", "old")]
    assert all(not a["done"] and a["outcome"] == "planned" for a in report["actions"])


def test_apply_removes_the_leftovers_and_nothing_else(fake):
    populated(fake)
    report = cleanup.Cleanup(fake, NAMES, apply=True).run()
    assert report["summary"] == {"planned": 3, "done": 3, "kept": 0}
    left = sorted(o["metadata"]["name"] for o in fake.objects.values())
    assert left == [lease_name("u-1"), "vm1", "vm1"]  # the live instance, its VM and its Lease


def test_a_lease_taken_over_after_it_was_judged_is_kept(fake):
    populated(fake)
    run = cleanup.Cleanup(fake, NAMES, apply=True)
    judged = fake.get(LEASE, lease_name("u-old"), "tenants")
    taken = dict(judged, spec=dict(judged["spec"], holderIdentity="job-8@aap.example.com", renewTime=stamp(0)))
    fake.replace(LEASE, taken, "tenants")
    done, outcome = run._delete_lease(judged)
    assert not done and "changed" in outcome
    assert fake.get(LEASE, lease_name("u-old"), "tenants")["spec"]["holderIdentity"] == "job-8@aap.example.com"
