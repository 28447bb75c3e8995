"""Unit tests for plugins/module_utils/lock.py: acquire, take over, renew, release."""

from __future__ import annotations

import datetime
import time

import pytest

from ansible_collections.cloudkit.provisioning.plugins.module_utils import kube_errors
from ansible_collections.cloudkit.provisioning.plugins.module_utils import lock as lock_utils
from ansible_collections.cloudkit.provisioning.plugins.module_utils.lock import (
    LEASE,
    InstanceDeleting,
    InstanceGone,
    InstanceLock,
    LeaseFence,
    LockLost,
    LockTimeout,
)


def stamp(seconds_ago):
    moment = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds_ago)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease(holder, renewed_seconds_ago, duration=60, transitions=0):
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": lock_utils.lease_name("u-1"), "namespace": "tenants"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration, "acquireTime": stamp(300),
                     "renewTime": stamp(renewed_seconds_ago), "leaseTransitions": transitions}}


def make(fake, holder="job-1", **kwargs):
    return InstanceLock(fake, "tenants", "u-1", holder, lease_duration=30, labels={"a/b": "c"}, **kwargs)


def test_first_holder_creates_the_lease(fake):
    taken = make(fake, owner={"apiVersion": "g/v1", "kind": "ComputeInstance", "name": "vm1", "uid": "u-1"}).acquire(timeout=5)
    spec = taken["lease"]["spec"]
    assert (spec["holderIdentity"], spec["leaseDurationSeconds"], spec["leaseTransitions"]) == ("job-1", 30, 0)
    assert spec["acquireTime"] == spec["renewTime"]
    assert taken["already_held"] is False and taken["taken_over_from"] is None
    metadata = fake.get(LEASE, "computeinstance-u-1", "tenants")["metadata"]
    assert metadata["labels"] == {"a/b": "c"}
    assert metadata["ownerReferences"][0]["uid"] == "u-1"


def test_an_uncontended_acquire_is_one_create_and_no_read(fake):
    make(fake).acquire(timeout=5)
    assert not fake.reads and len(fake.created) == 1


def test_a_create_refused_with_a_conflict_is_tried_again(fake):
    create = fake.create
    refusals = [kube_errors.Conflict("the object has been modified", status=409, reason="Conflict")]

    def refused_once(*args, **kwargs):
        if refusals:
            raise refusals.pop()
        return create(*args, **kwargs)
    fake.create = refused_once
    taken = make(fake).acquire(timeout=5)
    assert taken["lease"]["spec"]["holderIdentity"] == "job-1" and not refusals


def test_same_holder_reacquires_by_renewing(fake):
    fake.put(LEASE, lease("job-1", 10))
    taken = make(fake).acquire(timeout=5)
    assert taken["already_held"] is True
    assert taken["lease"]["spec"]["renewTime"] > stamp(5)


def test_a_live_lease_of_another_holder_times_out_naming_it(fake):
    fake.put(LEASE, lease("job-7265", 1))
    with pytest.raises(LockTimeout, match="held by job-7265"):
        make(fake, holder="job-7267").acquire(timeout=0.2)
    assert fake.get(LEASE, "computeinstance-u-1", "tenants")["spec"]["holderIdentity"] == "job-7265"
    assert "leases" in fake.watches, "waiting watches the Lease instead of sleeping"


def test_a_lapsed_lease_is_taken_over(fake):
    fake.put(LEASE, lease("job-dead", 61, duration=60, transitions=2))
    taken = make(fake, holder="job-new").acquire(timeout=5)
    spec = taken["lease"]["spec"]
    assert taken["taken_over_from"] == "job-dead"
    assert spec["holderIdentity"] == "job-new" and spec["leaseTransitions"] == 3
    assert spec["acquireTime"] == spec["renewTime"]


def test_two_takers_of_a_lapsed_lease_cannot_both_win(fake):
    fake.put(LEASE, lease("job-dead", 120))

    def rival(client):
        current = client.objects[("leases", "tenants", "computeinstance-u-1")]
        client.put(LEASE, dict(current, spec=dict(current["spec"], holderIdentity="job-rival", renewTime=stamp(0))))

    fake.before_write.append(rival)
    with pytest.raises(LockTimeout, match="job-rival"):
        make(fake, holder="job-late").acquire(timeout=0.2)


def test_renew_extends_and_detects_loss(fake):
    fake.put(LEASE, lease("job-1", 20))
    lock = make(fake)
    renewed = lock.renew()
    assert renewed["spec"]["renewTime"] > stamp(5)
    fake.put(LEASE, lease("job-2", 0))
    with pytest.raises(LockLost, match="held by job-2"):
        lock.renew()
    fake.objects.clear()
    with pytest.raises(LockLost, match="gone"):
        lock.renew()


def test_release_deletes_only_our_own_lease(fake):
    fake.put(LEASE, lease("job-2", 0))
    assert make(fake).release() == (False, "job-2")
    assert fake.get_or_none(LEASE, "computeinstance-u-1", "tenants") is not None
    fake.put(LEASE, lease("job-1", 0))
    assert make(fake).release() == (True, "job-1")
    assert fake.get_or_none(LEASE, "computeinstance-u-1", "tenants") is None
    assert make(fake).release() == (False, None)


def test_adopt_duration(fake):
    lock = make(fake)
    lock.adopt_duration(lease("job-1", 0, duration=90))
    assert lock.lease_duration == 90


def fence_for(fake, now, holder="job-1", **kwargs):
    return LeaseFence(fake, "tenants", "u-1", holder, clock=lambda: now[0], **kwargs)


def test_the_fence_renews_only_when_the_margin_is_used_up(fake):
    now = [0.0]
    fake.put(LEASE, lease("job-1", 0, duration=30))
    fence = fence_for(fake, now)
    fence.check()  # the first check proves the lease is ours by renewing it
    assert [w[0] for w in fake.writes] == ["replace"]
    now[0] = 23.0  # 30 s lease, 6 s margin: still valid
    fence.check()
    assert len(fake.writes) == 1
    now[0] = 24.5
    fence.check()
    assert len(fake.writes) == 2 and fence.renewals == 2


def test_a_fence_that_lost_its_lease_refuses_every_later_write(fake):
    now = [0.0]
    fake.put(LEASE, lease("job-1", 0, duration=30))
    fence = fence_for(fake, now)
    fence.check()
    fake.put(LEASE, lease("job-2", 0, duration=30))  # taken over while this job stalled
    now[0] = 100.0
    with pytest.raises(LockLost, match="held by job-2"):
        fence.check()
    fake.put(LEASE, lease("job-1", 0, duration=30))  # even if it came back, the job stopped for good
    with pytest.raises(LockLost):
        fence.check()
    assert isinstance(LockLost("x"), kube_errors.KubeError) and LockLost("x").reason == "LockLost"


def test_the_fence_stops_a_provision_of_a_deleted_or_recreated_instance(fake):
    now = [0.0]
    fake.put(LEASE, lease("job-1", 0, duration=30))
    fence = fence_for(fake, now, stop_if_deleting=True)
    fence.observe({"metadata": {"uid": "u-1"}})
    fence.check()
    fence.observe({"metadata": {"uid": "u-1", "deletionTimestamp": "2026-11-30T22:00:00Z"}})
    with pytest.raises(InstanceDeleting, match="being deleted"):
        fence.check()
    other = fence_for(fake, now)
    other.observe({"metadata": {"uid": "u-1", "deletionTimestamp": "2026-11-30T22:00:00Z"}})
    other.check()  # a delete goes on with a deleting instance
    other.observe({"metadata": {"uid": "u-2"}})
    with pytest.raises(InstanceGone, match="re-created .uid u-2"):
        other.check()


def test_the_background_renewal_keeps_the_lease_fresh(fake):
    fake.put(LEASE, lease("job-1", 0, duration=15))
    fence = LeaseFence(fake, "tenants", "u-1", "job-1")
    fence.renew()
    fence.lock.lease_duration = 0.3  # every 0.1 s, to keep the test short
    fence.start(instance_interval=0.05)
    try:
        deadline = time.monotonic() + 5
        while fence.renewals < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        fence.close()
    assert fence.renewals >= 4


@pytest.mark.parametrize("job_id, host, expected", [
    (7265, "https://AAP.example.com/api/controller/", "job-7265@aap.example.com"),
    ("12", "aap.example.com:8443", "job-12@aap.example.com:8443"),
    (3, "", "job-3@unknown-controller"),
])
def test_holder_identity_names_the_controller(job_id, host, expected):
    assert lock_utils.holder_identity(job_id, host) == expected
    assert lock_utils.holder_identity(None, host, run_id="abc", hostname="h1") == "run-abc@h1"


def test_only_our_controllers_jobs_are_asked_about():
    assert lock_utils.holder_job("job-7@aap.example.com", "https://aap.example.com") == 7
    assert lock_utils.holder_job("job-7@other.example.com", "https://aap.example.com") is None
    assert lock_utils.holder_job("job-7", "https://aap.example.com") is None  # older holders name no controller
    assert lock_utils.holder_job("run-x@h1", "https://aap.example.com") is None
    assert lock_utils.holder_job("job-7@aap.example.com", "") is None


def test_an_unreadable_lease_time_counts_as_held(fake):
    broken = lease("job-2", 0)
    broken["spec"]["renewTime"] = "not-a-time"
    broken["spec"]["acquireTime"] = None
    assert not lock_utils.is_expired(broken)
    fake.put(LEASE, broken)
    with pytest.raises(LockTimeout, match="not a time, so it counts as held"):
        make(fake).acquire(timeout=0)
    assert fake.get(LEASE, "computeinstance-u-1", "tenants")["spec"]["holderIdentity"] == "job-2"
    assert lock_utils.is_expired({"spec": {"holderIdentity": None}})


def test_the_lease_duration_has_a_floor():
    assert lock_utils.check_lease_duration(15) == 15
    with pytest.raises(ValueError, match="at least 15 seconds"):
        lock_utils.check_lease_duration(5)


def test_a_holder_is_required(fake):
    with pytest.raises(ValueError, match="holder"):
        InstanceLock(fake, "ns", "u", "")


def test_expiry_math():
    assert lock_utils.is_expired(lease("x", 61, duration=60))
    assert not lock_utils.is_expired(lease("x", 10, duration=60))
    assert lock_utils.is_expired({"spec": {}}), "a lease never renewed counts as lapsed"


def test_a_dead_holders_live_lease_is_taken_over_at_once(fake):
    fake.put(LEASE, lease("job-7265", 1))
    taken = make(fake, holder="job-7267", dead_holders=["job-7265"]).acquire(timeout=5)
    assert taken["taken_over_from"] == "job-7265" and taken["waited"] < 1
    assert taken["lease"]["spec"]["holderIdentity"] == "job-7267"
