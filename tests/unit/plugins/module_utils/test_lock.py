"""Unit tests for plugins/module_utils/lock.py: acquire, take over, renew, release."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.cloudkit.provisioning.plugins.module_utils import kube
from ansible_collections.cloudkit.provisioning.plugins.module_utils import lock as lock_utils
from ansible_collections.cloudkit.provisioning.plugins.module_utils.lock import LEASE, InstanceLock, LockLost, LockTimeout, Renewer


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
    refusals = [kube.Conflict("the object has been modified", status=409, reason="Conflict")]

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


def test_adopt_duration_and_renewer_interval(fake):
    lock = make(fake)
    lock.adopt_duration(lease("job-1", 0, duration=90))
    assert lock.lease_duration == 90
    now = [0.0]
    fake.put(LEASE, lease("job-1", 0, duration=90))
    renewer = Renewer(lock, clock=lambda: now[0])
    assert renewer.interval == 30.0
    renewer()
    assert not fake.writes
    now[0] = 31.0
    renewer()
    assert [w[0] for w in fake.writes] == ["replace"]


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
