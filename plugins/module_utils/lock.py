# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Per-instance lock on a coordination.k8s.io/v1 Lease.

Provision and deprovision of one ComputeInstance must never run at once,
whatever launched them (docs/contract.md, Upstream defects: job 7265 was still provisioning
while 7267 deprovisioned). Every job takes the instance's Lease first. The
holder renews it while it works; a holder that died stops renewing, and once
leaseDurationSeconds have passed since its last renewal the next job takes
the Lease over. Every write carries the resourceVersion it was decided from,
so two jobs can never both believe they hold it. Expiry compares renewTime
with this machine's clock: job hosts are assumed to keep NTP time.
"""

from __future__ import annotations

import datetime
import re
import threading
import time
from typing import Any, Callable, Optional

from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_errors import (
    Conflict,
    Gone,
    KubeError,
    NotFound,
    TransportError,
)
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_resources import STATIC_RESOURCES
from ansible_collections.cloudkit.provisioning.plugins.module_utils.times import micro_time, parse_time, utc_now

LEASE = STATIC_RESOURCES[("coordination.k8s.io/v1", "Lease")]
DEFAULT_LEASE_DURATION = 60
# Renewal every third of the lease, with a margin for clock skew and a loaded job host: below 15 s one slow
# module start-up could let a live job's lease lapse.
MIN_LEASE_DURATION = 15
UNKNOWN_CONTROLLER = "unknown-controller"
_JOB_HOLDER = re.compile(r"^job-(\d+)@(.+)$")


class LockTimeout(Exception):
    """The lock stayed held by another job for the whole timeout."""


class Fenced(KubeError):
    """A write refused before it was sent: the job may no longer act on the instance.

    A KubeError, so every module reports it like an API error, with its reason in api_error.
    """

    def __init__(self, message, reason):
        super(Fenced, self).__init__(message, reason=reason)


class LockLost(Fenced):
    """The lease is no longer ours: someone took it over or deleted it, or it lapsed while we stalled."""

    def __init__(self, message):
        super(LockLost, self).__init__("lock lost: %s" % message, "LockLost")


class InstanceGone(Fenced):
    """The instance the job was launched for was deleted (or re-created under its name with another uid)."""

    def __init__(self, message):
        super(InstanceGone, self).__init__(message, "InstanceGone")


class InstanceDeleting(Fenced):
    """A provision stops when its instance is being deleted, so the delete can proceed at once."""

    def __init__(self, message):
        super(InstanceDeleting, self).__init__(message, "InstanceDeleting")


def check_lease_duration(seconds: int) -> int:
    if seconds < MIN_LEASE_DURATION:
        raise ValueError("lease_duration must be at least %d seconds (the lease is renewed every third of it), got %d"
                         % (MIN_LEASE_DURATION, seconds))
    return seconds


def lease_name(instance_uid: str) -> str:
    """One Lease per instance object; the uid keeps a re-created instance apart from its predecessor."""
    return "computeinstance-%s" % instance_uid


def controller_key(host: Optional[str]) -> str:
    """A controller URL reduced to what names it in a holder: lower-case host[:port], no scheme or path."""
    key = (host or "").strip().lower()
    key = re.sub(r"^[a-z][a-z0-9+.-]*://", "", key)
    return key.split("/", 1)[0]


def holder_identity(job_id=None, controller_host=None, run_id=None, hostname=None) -> str:
    """Who holds a lock: `job-<id>@<controller>` for a controller's job, `run-<id>@<host>` for a hand run.

    The controller is named so that a delete asks only the controller that ran a holder whether its job
    ended; another controller's job ids mean nothing to it.
    """
    if job_id not in (None, ""):
        return "job-%s@%s" % (job_id, controller_key(controller_host) or UNKNOWN_CONTROLLER)
    if not run_id or not hostname:
        raise ValueError("a hand run's lock holder needs a run id and the host name")
    return "run-%s@%s" % (run_id, hostname)


def holder_job(holder: Optional[str], controller_host: Optional[str]) -> Optional[int]:
    """The job id of a holder run by the controller at `controller_host`; None for anyone else."""
    match = _JOB_HOLDER.match(holder or "")
    key = controller_key(controller_host)
    if not match or not key or match.group(2) != key:
        return None
    return int(match.group(1))


def holder_of(lease):
    return ((lease or {}).get("spec") or {}).get("holderIdentity")


def expires_at(lease):
    """When the lease lapses unless renewed; None when its time cannot be read."""
    spec = (lease or {}).get("spec") or {}
    renewed = parse_time(spec.get("renewTime") or spec.get("acquireTime"))
    if renewed is None:
        return None
    return renewed + datetime.timedelta(seconds=spec.get("leaseDurationSeconds") or DEFAULT_LEASE_DURATION)


def is_expired(lease, now=None) -> bool:
    """Whether another job may take the lease over. A holder whose times cannot be read still holds it."""
    if not holder_of(lease):
        return True
    expiry = expires_at(lease)
    return expiry is not None and expiry <= (now or utc_now())


def describe(lease) -> str:
    """The lease's holder and times, for messages; says when its time cannot be read."""
    spec = (lease or {}).get("spec") or {}
    renewed = spec.get("renewTime") or spec.get("acquireTime")
    text = "held by %s (renewed %s, lease %ss)" % (holder_of(lease), renewed, spec.get("leaseDurationSeconds"))
    if holder_of(lease) and expires_at(lease) is None:
        text += "; its renewTime %r is not a time, so it counts as held until its holder releases it or it is deleted" % (renewed,)
    return text


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
        now = micro_time(utc_now())
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
                raise LockTimeout("Lease %s/%s is %s; gave up after %ds" % (self.namespace, self.name, describe(lease), timeout))
            if on_wait is not None:
                on_wait(lease)
            self._wait_for_change(lease, remaining)

    def _wait_for_change(self, lease, remaining):
        """Block until the Lease changes or could have expired, or `remaining` passes."""
        expiry = expires_at(lease)
        # A lease whose time cannot be read lapses never: wait for it to change.
        until_expiry = (expiry - utc_now()).total_seconds() if expiry else remaining
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
            self.adopt_duration(lease)  # a renewal keeps the duration the lease was acquired with
            try:
                return self._write(lease, self._spec(lease))
            except Conflict:
                if attempt + 1 == attempts:
                    raise
        return None

    def preview(self, state: str) -> dict[str, Any]:
        """What `state` (present, renewed, absent) would do, read-only, for check mode: holder, changed, acquired."""
        lease = self.read()
        ours = lease is not None and holder_of(lease) == self.holder
        if state == "absent":
            return {"holder": holder_of(lease), "changed": ours, "acquired": False}
        free = lease is None or ours or is_expired(lease)
        return {"holder": holder_of(lease), "changed": state == "present" and free and not ours, "acquired": free,
                "waited": 0.0}

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


class LeaseFence(object):
    """Proof, before every write of a lock-holding job, that the instance's Lease is still its own.

    A Kubernetes write cannot be made conditional on another object, so the fence narrows the gap
    instead: a background thread renews the lease every third of its duration for as long as the
    module runs, and `check()`, called before each write, renews at once when the last renewal is
    older than the lease minus a margin (a job stalled or starved past its lease finds out here,
    before it writes). Once the lease was lost every later check raises LockLost: the job stops.
    `watch_instance`, for a provision, reads the instance alongside: a delete (deletionTimestamp) or a
    re-created namesake stops the job at its next write or wait tick.
    """

    def __init__(self, client, namespace: str, instance_uid: str, holder: str, instance_reader: Optional[Callable] = None,
                 stop_if_deleting: bool = False, clock=time.monotonic):
        self.lock = InstanceLock(client, namespace, instance_uid, holder)
        self.instance_uid = instance_uid
        self.instance_reader = instance_reader
        self.stop_if_deleting = stop_if_deleting
        self.clock = clock
        self.stopped: Optional[Fenced] = None
        self.renewals = 0
        self._valid_until = None
        self._mutex = threading.RLock()
        self._done = threading.Event()
        self._thread = None

    @property
    def duration(self) -> int:
        return self.lock.lease_duration

    def renew(self):
        """Renew now; raises LockLost (for good) when the lease is no longer ours."""
        with self._mutex:
            if self.stopped is not None:
                raise self.stopped
            started = self.clock()
            try:
                lease = self.lock.renew()
            except LockLost as exc:
                self.stopped = exc
                raise
            self.lock.adopt_duration(lease)
            # The taker compares renewTime + duration with its own clock: keep a margin for skew and latency.
            self._valid_until = started + self.duration - max(2.0, self.duration / 5.0)
            self.renewals += 1
            return lease

    def observe(self, instance):
        """Stop the job when its instance is gone, re-created, or (for a provision) being deleted."""
        metadata = (instance or {}).get("metadata") or {}
        if instance is None or metadata.get("uid") != self.instance_uid:
            self._stop(InstanceGone("the ComputeInstance (uid %s) was deleted%s: stopped" % (
                self.instance_uid, " and re-created (uid %s)" % metadata.get("uid") if instance else "")))
        elif self.stop_if_deleting and metadata.get("deletionTimestamp"):
            self._stop(InstanceDeleting("the ComputeInstance is being deleted (since %s): provisioning stopped so the delete can"
                                        " proceed" % metadata["deletionTimestamp"]))

    def _stop(self, error):
        with self._mutex:
            if self.stopped is None:
                self.stopped = error

    def check(self):
        """Before a write: raise Fenced unless this job still holds the lease (renewing it when due)."""
        if self.stopped is not None:
            raise self.stopped
        if self._valid_until is None or self.clock() >= self._valid_until:
            self.renew()
        if self.stopped is not None:
            raise self.stopped

    def start(self, instance_interval: float = 3.0):
        """Renew in the background (and read the instance every `instance_interval` s) until close()."""
        renew_every = self.duration / 3.0

        def run():
            next_renewal = self.clock() + renew_every
            while not self._done.wait(min(instance_interval, max(0.1, next_renewal - self.clock()))):
                try:
                    if self.instance_reader is not None:
                        self.observe(self.instance_reader())
                    if self.clock() >= next_renewal:
                        self.renew()
                        next_renewal = self.clock() + renew_every
                except Fenced:
                    return
                except KubeError:
                    continue  # a failed renewal is retried; check() renews in the foreground once the margin is used
        self._thread = threading.Thread(target=run, name="lease-renewal", daemon=True)
        self._thread.start()
        return self

    def close(self):
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
