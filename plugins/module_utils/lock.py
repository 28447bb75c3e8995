# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Per-instance lock on a coordination.k8s.io/v1 Lease.

Provision and deprovision of one ComputeInstance must never run at once,
whatever launched them (CONTRACT section 4: job 7265 was still provisioning
while 7267 deprovisioned). Every job takes the instance's Lease first. The
holder renews it while it works; a holder that died stops renewing, and once
leaseDurationSeconds have passed since its last renewal the next job takes
the Lease over. Every write carries the resourceVersion it was decided from,
so two jobs can never both believe they hold it. Expiry compares renewTime
with this machine's clock: job hosts are assumed to keep NTP time.
"""

from __future__ import annotations

import datetime
import time

from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube import (
    STATIC_RESOURCES,
    Conflict,
    Gone,
    NotFound,
    TransportError,
)

LEASE = STATIC_RESOURCES[("coordination.k8s.io/v1", "Lease")]
DEFAULT_LEASE_DURATION = 60


class LockTimeout(Exception):
    """The lock stayed held by another job for the whole timeout."""


class LockLost(Exception):
    """The lease is no longer ours: someone took it over or deleted it."""


def lease_name(instance_uid):
    """One Lease per instance object; the uid keeps a re-created instance apart from its predecessor."""
    return "computeinstance-%s" % instance_uid


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _micro_time(moment):
    """metav1.MicroTime, as Lease times are written."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value):
    if not value:
        return None
    for layout in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.datetime.strptime(value, layout).replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            continue
    return None


def holder_of(lease):
    return ((lease or {}).get("spec") or {}).get("holderIdentity")


def expires_at(lease):
    """When the lease lapses unless renewed (None: never renewed, so already lapsed)."""
    spec = (lease or {}).get("spec") or {}
    renewed = _parse_time(spec.get("renewTime")) or _parse_time(spec.get("acquireTime"))
    if renewed is None:
        return None
    return renewed + datetime.timedelta(seconds=spec.get("leaseDurationSeconds") or DEFAULT_LEASE_DURATION)


def is_expired(lease, now=None):
    expiry = expires_at(lease)
    return expiry is None or expiry <= (now or _now())


class InstanceLock(object):
    """The Lease of one ComputeInstance, seen by one holder."""

    def __init__(self, client, namespace, instance_uid, holder, lease_duration=DEFAULT_LEASE_DURATION, labels=None, owner=None,
                 dead_holders=(), clock=time.monotonic):
        if not holder:
            raise ValueError("holder must name the job (its id, or host and process)")
        self.client = client
        self.namespace = namespace
        self.name = lease_name(instance_uid)
        self.holder = holder
        self.lease_duration = int(lease_duration)
        self.labels = dict(labels or {})
        self.owner = owner
        # Holders known to have stopped (their jobs were canceled and are terminal): no need to wait for their lease to lapse.
        self.dead_holders = frozenset(dead_holders)
        self.clock = clock

    def _spec(self, lease=None, take_over=False):
        now = _micro_time(_now())
        spec = dict((lease or {}).get("spec") or {})
        if lease is None or take_over:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if take_over else 0)
        spec.update(holderIdentity=self.holder, leaseDurationSeconds=self.lease_duration, renewTime=now)
        return spec

    def adopt_duration(self, lease):
        """Renewals keep the duration the lease was acquired with."""
        self.lease_duration = int(((lease or {}).get("spec") or {}).get("leaseDurationSeconds") or self.lease_duration)

    def read(self):
        return self.client.get_or_none(LEASE, self.name, self.namespace)

    def _create(self):
        """Create the Lease: (acquired, lease as created or as read after a 409)."""
        metadata = {"name": self.name, "namespace": self.namespace, "labels": self.labels}
        if self.owner:
            # Garbage collection removes a Lease whose instance is gone.
            metadata["ownerReferences"] = [dict(self.owner, blockOwnerDeletion=False)]
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": self._spec()}
        try:
            return True, self.client.create(LEASE, body, self.namespace)
        except Conflict:
            # AlreadyExists: another job was first. Any other 409 refused the create. Either way: read, decide again.
            return False, self.read()

    def try_acquire(self, create_first=False):
        """One attempt: (acquired, lease, previous holder taken over or None, already ours).

        `create_first` tries the create before any read: the uncontended case (by far the most common) then costs one
        request; a 409 reads the Lease and decides on it as usual.
        """
        lease = None if create_first else self.read()
        if lease is None:
            created, lease = self._create()
            if created or lease is None:  # None: deleted again since the 409; the next attempt creates it
                return created, lease, None, False
        current = holder_of(lease)
        try:
            if current == self.holder:
                return True, self._write(lease, self._spec(lease)), None, True
            if is_expired(lease) or current in self.dead_holders:
                return True, self._write(lease, self._spec(lease, take_over=True)), current, False
        except (Conflict, NotFound):
            return False, self.read(), None, False
        return False, lease, None, False

    def _write(self, lease, spec):
        body = dict(lease, spec=spec)
        return self.client.replace(LEASE, body, self.namespace)

    def acquire(self, timeout, on_wait=None):
        """Acquire, waiting up to `timeout` seconds; returns {lease, waited, taken_over_from, already_held}.

        While another job holds the lease, wait on a watch of the Lease (woken by
        its release or renewal) rather than polling, at most until it would expire.
        """
        started = self.clock()
        deadline = started + timeout
        attempt = 0
        while True:
            attempt += 1
            acquired, lease, previous, already_held = self.try_acquire(create_first=attempt == 1)
            if acquired:
                return {"lease": lease, "waited": self.clock() - started, "taken_over_from": previous, "already_held": already_held}
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise LockTimeout(
                    "Lease %s/%s is held by %s (renewed %s, lease %ss); gave up after %ds"
                    % (self.namespace, self.name, holder_of(lease), ((lease or {}).get("spec") or {}).get("renewTime"),
                       ((lease or {}).get("spec") or {}).get("leaseDurationSeconds"), timeout)
                )
            if on_wait is not None:
                on_wait(lease)
            self._wait_for_change(lease, remaining)

    def _wait_for_change(self, lease, remaining):
        """Block until the Lease changes or could have expired, or `remaining` passes."""
        expiry = expires_at(lease)
        until_expiry = (expiry - _now()).total_seconds() if expiry else 0
        wait = max(0.05, min(remaining, until_expiry + 0.05))
        if lease is None:
            return
        version = lease["metadata"].get("resourceVersion")
        try:
            for event in self.client.watch(LEASE, self.namespace, resource_version=version, field_selector="metadata.name=%s" % self.name,
                                           timeout_seconds=max(1, int(wait + 0.999)), allow_bookmarks=False):
                if event["type"] in ("MODIFIED", "DELETED"):
                    return
        except (Gone, TransportError):
            # A broken watch only costs a re-read.
            time.sleep(min(wait, 0.2))

    def renew(self, attempts=5):
        """Extend our lease; raises LockLost when it is no longer ours."""
        for attempt in range(attempts):
            lease = self.read()
            if lease is None or holder_of(lease) != self.holder:
                raise LockLost("Lease %s/%s is now %s" % (self.namespace, self.name, "held by %s" % holder_of(lease) if lease else "gone"))
            try:
                return self._write(lease, self._spec(lease))
            except Conflict:
                if attempt + 1 == attempts:
                    raise
        return None

    def release(self):
        """Delete the lease if it is ours: (released, holder seen). Never deletes another job's lease."""
        while True:
            lease = self.read()
            if lease is None:
                return False, None
            current = holder_of(lease)
            if current != self.holder:
                return False, current
            try:
                self.client.delete(LEASE, self.name, self.namespace, preconditions={"resourceVersion": lease["metadata"]["resourceVersion"]})
                return True, current
            except NotFound:
                return False, None
            except Conflict:
                continue


class Renewer(object):
    """Renews a held lock at most every `interval` seconds when poked from a wait loop."""

    def __init__(self, lock, interval=None, clock=time.monotonic):
        self.lock = lock
        self.interval = interval if interval is not None else max(1.0, lock.lease_duration / 3.0)
        self.clock = clock
        self.last = clock()

    def __call__(self):
        if self.clock() - self.last >= self.interval:
            self.lock.renew()
            self.last = self.clock()
