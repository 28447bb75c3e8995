"""Unit tests for plugins/module_utils/status.py: conditions, job records, the guarded status write, events."""

from __future__ import annotations

import pytest

from ansible_collections.cloudkit.provisioning.plugins.module_utils import kube_errors, kube_resources
from ansible_collections.cloudkit.provisioning.plugins.module_utils.names import Names
from ansible_collections.cloudkit.provisioning.plugins.module_utils.status import (
    StatusError,
    desired_status,
    events_for,
    merge_conditions,
    record_events,
    status_changes,
    update_status,
)

T0, T1 = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"


def test_condition_transition_time_moves_only_with_status():
    existing = [{"type": "Available", "status": "False", "reason": "Starting", "message": "", "lastTransitionTime": T0, "observedGeneration": 1}]
    same = merge_conditions(existing, [{"type": "Available", "status": "False", "reason": "StillStarting", "message": "m"}], 2, T1)
    assert same == [{"type": "Available", "status": "False", "reason": "StillStarting", "message": "m", "lastTransitionTime": T0, "observedGeneration": 2}]
    flipped = merge_conditions(existing, [{"type": "Available", "status": "True"}], 2, T1)
    assert flipped[0]["lastTransitionTime"] == T1 and flipped[0]["reason"] == "Available"
    assert existing[0]["reason"] == "Starting", "input is not modified"


def test_conditions_upsert_by_type_and_keep_others():
    existing = [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "", "lastTransitionTime": T0}]
    merged = merge_conditions(existing, [{"type": "Progressing", "status": "True", "reason": "Provisioning"}], None, T1)
    assert [c["type"] for c in merged] == ["Accepted", "Progressing"]
    assert "observedGeneration" not in merged[1]


@pytest.mark.parametrize(
    "update, message",
    [
        ({"type": "", "status": "True"}, "conditions[].type"),
        ({"type": "Ready", "status": "yes"}, "conditions[Ready].status"),
        ({"type": "Ready", "status": "True", "reason": "has spaces"}, "conditions[Ready].reason"),
    ],
)
def test_bad_conditions_name_the_field(update, message):
    with pytest.raises(StatusError, match=message.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        merge_conditions([], [update], 1, T0)


def live(status=None, generation=4):
    return {"apiVersion": "cloudkit.openshift.io/v1alpha1", "kind": "ComputeInstance",
            "metadata": {"name": "vm1", "namespace": "tenants", "uid": "u", "generation": generation, "resourceVersion": "1"},
            "status": status or {}}


def test_only_given_fields_change():
    before = {"phase": "Progressing", "desiredConfigVersion": "v1", "tenantReference": {"name": "t"}}
    after = desired_status(live(before), {"phase": "Ready", "virtual_machine_reference": {"namespace": "ns", "name": "vm1"}}, T0)
    assert after == dict(before, phase="Ready", virtualMachineReference={"namespace": "ns", "kubeVirtVirtualMachineName": "vm1"})
    assert status_changes(before, after) == ["phase", "virtualMachineReference"]


def test_job_records_in_both_shapes():
    job = {"id": 7265, "type": "provision", "state": "Running", "message": "", "block_deletion_on_failure": False, "config_version": "v1"}
    seed = desired_status(live(), {"job": job}, T0)
    assert seed["provisionJob"] == {"id": "7265", "state": "Running", "message": "", "blockDeletionOnFailure": False}
    later = desired_status(live({"jobs": []}), {"job": job}, T0)
    assert later["jobs"] == [{"jobID": "7265", "type": "provision", "timestamp": T0, "state": "Running", "message": "",
                              "blockDeletionOnFailure": False, "configVersion": "v1"}]
    updated = desired_status(live(later), {"job": dict(job, state="Succeeded")}, T1)
    assert len(updated["jobs"]) == 1 and updated["jobs"][0]["state"] == "Succeeded" and updated["jobs"][0]["timestamp"] == T0
    other = desired_status(live(updated), {"job": dict(job, id=7267, type="deprovision"), "job_records": "list"}, T1)
    assert [j["jobID"] for j in other["jobs"]] == ["7265", "7267"]


def test_messages_are_cut_to_what_the_api_server_takes(fake):
    """A condition's message fits the CRD's 32768 characters; an Event's message 1024 bytes and its reason 128 bytes
    (Go's len()), cut at a character boundary: hostile or long text never makes the write fail."""
    long_error = "\u4e16" * 40000
    condition = merge_conditions([], [{"type": "Available", "status": "False", "reason": "Failed", "message": long_error}], 1, T0)[0]
    assert len(condition["message"]) == 32768 and condition["message"].endswith("\u2026")
    record_events(fake, live(), [("R" * 200, long_error, "Warning")])
    event = fake.created[0]
    assert len(event["message"].encode("utf-8")) <= 1024 and event["message"].endswith("\u2026")
    assert set(event["message"][:-1]) == {"\u4e16"}
    assert len(event["reason"].encode("utf-8")) <= 128 and len(event["action"].encode("utf-8")) <= 128
    record_events(fake, live(), [("Short", "fits", "Normal")])
    assert fake.created[1]["message"] == "fits" and fake.created[1]["reason"] == "Short"


@pytest.mark.parametrize(
    "options, message",
    [
        ({"phase": "Done"}, "phase must be one of"),
        ({"job": {"type": "provision", "state": "Running"}}, "job.id is required"),
        ({"job": {"id": 1, "type": "build", "state": "Running"}}, "job.type"),
        ({"job": {"id": 1, "type": "provision", "state": "Great"}}, "job.state"),
        ({"virtual_machine_reference": {"namespace": "ns"}}, "virtual_machine_reference needs"),
    ],
)
def test_bad_options_name_the_field(options, message):
    with pytest.raises(StatusError, match=message):
        desired_status(live(), options, T0)


def test_update_status_is_guarded_and_merges_onto_fresh_state(fake):
    resource = kube_resources.contract_resources(Names())[0]
    fake.put(resource, live({"phase": "Progressing"}))

    def operator_writes_desired_version(client):
        key = ("computeinstances", "tenants", "vm1")
        current = client.objects[key]
        client.put(resource, dict(current, status=dict(current["status"], desiredConfigVersion="v9")))

    fake.before_write.append(operator_writes_desired_version)
    changed, before, after, obj = update_status(fake, resource, "vm1", "tenants", {"phase": "Ready"}, now=T0)
    assert changed and before["desiredConfigVersion"] == "v9" and after["phase"] == "Ready"
    assert obj["status"] == {"phase": "Ready", "desiredConfigVersion": "v9"}
    assert [w[1] for w in fake.writes] == ["status", "status"], "the stale write was refused, then retried"
    stale, fresh = fake.writes[0][2], fake.writes[1][2]
    assert fresh["status"] == {"phase": "Ready"}, "only the changed field is sent"
    assert fresh["metadata"]["resourceVersion"] != stale["metadata"]["resourceVersion"]
    again = update_status(fake, resource, "vm1", "tenants", {"phase": "Ready"}, now=T1)
    assert again[0] is False and len(fake.writes) == 2


def test_check_mode_writes_nothing(fake):
    resource = kube_resources.STATIC_RESOURCES[("v1", "Service")]
    fake.put(resource, live())
    changed, _before, after, _obj = update_status(fake, resource, "vm1", "tenants", {"phase": "Failed"}, check_mode=True, now=T0)
    assert changed and after["phase"] == "Failed" and not fake.writes


def test_events_for_phase_changes_failures_and_explicit():
    failed_condition = [{"type": "Available", "status": "False", "message": "image pull failed"}]
    job = {"id": "9", "type": "provision", "state": "Failed", "message": "boom"}
    events = events_for({"phase": "Progressing"}, {"phase": "Failed"}, {"conditions": failed_condition, "job": job})
    assert events == [
        ("PhaseFailed", "phase Progressing -> Failed: image pull failed", "Warning"),
        ("ProvisionJobFailed", "job 9 failed: boom", "Warning"),
    ]
    assert events_for({"phase": "Ready"}, {"phase": "Ready"}, {}) == []
    assert events_for({}, {"phase": "Progressing"}, {}) == [("PhaseProgressing", "phase (none) -> Progressing", "Normal")]
    assert events_for({}, {}, {"event": {"reason": "Restarted", "message": "m", "type": None}}) == [("Restarted", "m", "Normal")]


def test_record_events_builds_real_events_and_never_fails(fake):
    record_events(fake, live(), [("PhaseReady", "phase Progressing -> Ready", "Normal")])
    event = fake.created[0]
    assert event["involvedObject"] == {"apiVersion": "cloudkit.openshift.io/v1alpha1", "kind": "ComputeInstance", "name": "vm1",
                                       "namespace": "tenants", "uid": "u", "resourceVersion": "1"}
    assert event["metadata"]["name"].startswith("vm1.") and event["type"] == "Normal" and event["count"] == 1

    class Refusing:
        def create(self, *_args, **_kwargs):
            raise kube_errors.Forbidden("events is forbidden", status=403)

    assert record_events(Refusing(), live(), [("X", "m", "Normal")]) == ["could not record event X: events is forbidden"]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"conditions": [{"type": "Ready", "status": "True", "mesage": "typo"}]}, "conditions\\[\\] has unknown key\\(s\\) mesage"),
        ({"conditions": ["Ready"]}, "conditions\\[\\] must be a mapping"),
        ({"job": {"id": 1, "type": "provision", "state": "Failed", "blocking": True}}, "job has unknown key\\(s\\) blocking"),
        ({"job": {"id": 1, "type": "provision", "state": "Failed", "block_deletion_on_failure": "maybe"}}, "job.block_deletion_on_failure"),
    ],
)
def test_unknown_keys_and_bad_types_are_named(options, message):
    with pytest.raises(StatusError, match=message):
        desired_status(live(), options, T0)


def test_block_deletion_accepts_ansible_booleans():
    job = {"id": 1, "type": "deprovision", "state": "Failed", "block_deletion_on_failure": "yes"}
    assert desired_status(live(), {"job": job}, T0)["deprovisionJob"]["blockDeletionOnFailure"] is True


@pytest.mark.parametrize("event, message", [({"reason": "bad reason"}, "event.reason"), ({"reason": "Ok", "type": "Error"}, "event.type"),
                                            ({"reason": "Ok", "severity": 1}, "event has unknown key")])
def test_bad_explicit_events_are_named(event, message):
    with pytest.raises(StatusError, match=message):
        events_for({}, {}, {"event": event})
