"""Unit tests for plugins/module_utils/latency.py: the phase Events a job writes, and how the report reads them back."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.cloudkit.provisioning.plugins.module_utils.latency import (
    DEPROVISION,
    PROVISION,
    LatencyError,
    build_run,
    check_timings,
    job_mode,
    operator_observed_at,
    percentile,
    phase_events,
    record_phase_events,
    runs_from_events,
    spec_changed_at,
    summarize,
    table,
    to_csv,
    window_bound,
)

UTC = datetime.timezone.utc
T0 = datetime.datetime(2026, 5, 4, 10, 0, 0, tzinfo=UTC)


def at(seconds):
    return T0 + datetime.timedelta(seconds=seconds)


def stamp(seconds):
    return at(seconds).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_timings_are_checked_naming_the_field():
    assert check_timings({"vm_ready": "2026-05-04T10:00:01Z", "lock_waited_for": "job-1@aap", "vm_applied": None}) == {
        "vm_ready": "2026-05-04T10:00:01.000000Z", "lock_waited_for": "job-1@aap"}
    with pytest.raises(LatencyError, match=r"phase_events.timings has unknown phase mark 'vm_redy'"):
        check_timings({"vm_redy": "2026-05-04T10:00:01Z"}, "phase_events.timings")
    with pytest.raises(LatencyError, match=r"timings.vm_ready must be an RFC 3339 time, got 'soon'"):
        check_timings({"vm_ready": "soon"})
    with pytest.raises(LatencyError, match="must be a mapping"):
        check_timings(["vm_ready"])


def test_phase_events_keep_each_phase_time_and_name_the_holder_waited_for():
    timings = check_timings({"lock_acquired": stamp(3), "job_started": stamp(0), "lock_wait_begun": stamp(1),
                             "lock_waited_for": "job-7@aap"})
    events = phase_events(timings, PROVISION, "job-8@aap")
    assert [(reason, moment) for reason, _note, moment in events] == [
        ("JobStarted", stamp(0)), ("LockWaitBegun", stamp(1)), ("LockAcquired", stamp(3))]
    assert events[2][1] == "provision job job-8@aap: lock acquired; waited for job-7@aap"
    with pytest.raises(LatencyError, match="action must be one of"):
        phase_events(timings, "Create", "job-8@aap")


def event(reason, seconds, holder="job-8@aap", action=PROVISION, uid="u1", note=""):
    return {"reason": reason, "eventTime": stamp(seconds), "action": action, "reportingComponent": "cloudkit-provisioning",
            "reportingInstance": holder, "message": note, "involvedObject": {"uid": uid, "namespace": "ns", "name": "vm1"}}


def test_events_group_by_instance_action_and_job_and_others_are_ignored():
    events = [event("JobStarted", 0), event("LockAcquired", 2, note="x: lock acquired; waited for job-7@aap"),
              event("JobStarted", 50, holder="job-9@aap", action=DEPROVISION),
              dict(event("PhaseReady", 5), action="PhaseReady"),  # a status Event, not a phase mark
              dict(event("JobStarted", 5), reportingComponent="someone-else")]
    runs = runs_from_events(events)
    assert sorted(runs) == [("u1", DEPROVISION, "job-9@aap"), ("u1", PROVISION, "job-8@aap")]
    provision = runs[("u1", PROVISION, "job-8@aap")]
    assert provision["marks"] == {"job_started": at(0), "lock_acquired": at(2)} and provision["waited_for"] == "job-7@aap"


def test_a_run_adds_up_its_phases_names_the_slowest_and_what_is_missing():
    marks = {"requested": at(0), "controller_created": at(1), "controller_started": at(3), "lock_wait_begun": at(6),
             "lock_acquired": at(16), "vm_applied": at(17), "datavolume_imported": at(40), "vm_ready": at(48),
             "status_written": at(48.5)}
    run = build_run(PROVISION, {"namespace": "ns", "name": "vm1", "uid": "u1"}, marks, {"id": 8, "mode": "EDA"}, "job-8@aap")
    assert run["phases"] == {"queue": 1.0, "launch": 2.0, "job_startup": 3.0, "lock_wait": 10.0, "vm_apply": 1.0,
                             "import": 23.0, "boot": 8.0, "bookkeeping": 0.5, "operator_observed": None}
    assert run["slowest"] == "import" and run["total"] == 48.5 and run["missing"] == ["operator_observed"]
    assert any("operator" in why for why in run["missing_why"])

    bare = build_run(DEPROVISION, {"namespace": "ns", "name": "vm1", "uid": "u1"}, {}, None, None, had_events=False)
    assert bare["missing"] == ["queue", "launch", "job_startup", "lock_wait", "vm_delete", "bookkeeping"]
    assert bare["slowest"] is None and bare["mode"] == "hand run" and len(bare["missing_why"]) == 3


def test_percentiles_and_summary_per_kind_and_mode():
    assert percentile([], 0.5) is None
    assert percentile([5, 1, 3, 2, 4], 0.5) == 3 and percentile(list(range(1, 101)), 0.95) == 95
    ref = {"namespace": "ns", "name": "vm", "uid": "u"}
    runs = [build_run(PROVISION, ref, {"lock_acquired": at(0), "vm_applied": at(1), "datavolume_imported": at(1 + i)},
                      {"id": i, "mode": "EDA" if i % 2 else "AAP Direct"}) for i in range(1, 7)]
    summary = summarize(runs)
    assert [(group["mode"], group["runs"]) for group in summary] == [("AAP Direct", 3), ("EDA", 3)]
    assert summary[0]["phases"]["import"] == {"count": 3, "p50": 4.0, "p95": 6.0}
    assert summary[1]["slowest"] == "import" and summary[1]["phases"]["queue"]["count"] == 0
    lines = table(runs, summary)
    assert lines[0].split()[:5] == ["instance", "run", "mode", "job", "queue"]
    assert any(line.startswith("p95 (3 runs)") for line in lines)
    rows = to_csv(runs).splitlines()
    assert rows[0].split(",")[7:10] == ["queue", "launch", "job_startup"] and len(rows) == 7


def test_window_bounds_and_job_modes():
    assert window_bound("2026-05-04T10:00:00Z", "since") == T0
    assert window_bound("90m", "since", now=at(7200)) == at(1800)
    assert window_bound(None, "until") is None
    with pytest.raises(LatencyError, match="since must be an RFC 3339 time or a duration"):
        window_bound("yesterday", "since")
    assert job_mode({"ansible_eda": {"ruleset": "r", "rule": "x", "event": {}}}) == "EDA"
    assert job_mode('{"ansible_eda": {"event": {"payload": {}}}}') == "AAP Direct"
    assert job_mode({"osac_job_vars": {"resource": {}}}) == "AAP Direct"


def test_request_and_operator_times_from_the_instance():
    instance = {"metadata": {"creationTimestamp": "2026-05-04T10:00:00Z", "managedFields": [
        {"manager": "kubectl", "operation": "Update", "time": "2026-05-04T10:05:00Z", "fieldsV1": {"f:spec": {}}},
        {"manager": "kubectl", "operation": "Update", "time": "2026-05-04T10:09:00Z", "fieldsV1": {"f:spec": {}}},
        {"manager": "operator", "operation": "Update", "subresource": "status", "time": "2026-05-04T10:06:01Z",
         "fieldsV1": {"f:status": {"f:reconciledConfigVersion": {}}}}]}}
    assert spec_changed_at(instance, 1) == T0
    assert spec_changed_at(instance, 2, before=at(400)) == at(300)
    assert spec_changed_at({"metadata": {"creationTimestamp": "2026-05-04T10:00:00Z"}}, 3) is None
    assert operator_observed_at(instance, at(360.5)) == at(361)
    assert operator_observed_at(instance, at(361.4)) == at(361.4), "same second: at our write"
    assert operator_observed_at(instance, at(362)) is None


def test_phase_events_are_recorded_at_their_own_time_with_action_and_job(fake):
    instance = {"apiVersion": "cloudkit.openshift.io/v1alpha1", "kind": "ComputeInstance",
                "metadata": {"name": "vm1", "namespace": "ns", "uid": "u1", "resourceVersion": "7"}}
    timings = check_timings({"job_started": stamp(0), "vm_ready": stamp(30.25), "lock_waited_for": None})
    written, warnings = record_phase_events(fake, instance, DEPROVISION, "job-8@aap.example.com", timings)
    assert warnings == [] and [entry["reason"] for entry in written] == ["JobStarted", "VirtualMachineReady"]
    first, second = fake.created[-2:]
    assert (first["eventTime"], second["eventTime"]) == (stamp(0), stamp(30.25))
    assert second["lastTimestamp"] == "2026-05-04T10:00:30Z" and second["action"] == "Deprovision"
    assert second["reportingInstance"] == "job-8@aap.example.com" and second["reportingComponent"] == "cloudkit-provisioning"
