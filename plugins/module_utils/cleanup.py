# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Find, and on request remove, what failed or killed jobs leave behind.

Four kinds of leftovers (docs/day2.md):

- VM objects (VirtualMachine, Service, DataVolume, Secret) labelled with the uid of a ComputeInstance that no
  longer exists. Uids are never reused, so such an object can never become anyone's again; it is deleted
  with a uid precondition, so a namesake made since is never touched.
- Instance Leases whose instance is gone (and whose holder is no longer live), or whose holder's job has ended
  by the word of the controller that ran it. Each is deleted with the resourceVersion it was judged on: a job
  that took the Lease over in between keeps it.
- Our finalizer on an instance being deleted when no job of the provision or deprovision template is active
  for it, none of its VM objects is left and its Lease is free. The removal is made holding the instance's
  Lease, as a job would, after checking everything again; the operator's own finalizer is never touched.
- With `cancel_jobs`, active provision and deprovision jobs whose instance no longer exists.

The decisions are pure functions (unit tested); `Cleanup` gathers the evidence, decides and applies.
"""

from __future__ import annotations

import socket
import uuid

from ansible_collections.cloudkit.provisioning.plugins.module_utils import aap
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_errors import KubeError
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_errors import NotFound as KubeNotFound
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_resources import contract_resources
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kubevirt import DELETE_ORDER
from ansible_collections.cloudkit.provisioning.plugins.module_utils.lifecycle import delete_exactly
from ansible_collections.cloudkit.provisioning.plugins.module_utils.lock import (
    LEASE,
    MIN_LEASE_DURATION,
    InstanceGone,
    InstanceLock,
    controller_key,
    holder_identity,
    holder_job,
    holder_of,
    is_expired,
)
from ansible_collections.cloudkit.provisioning.plugins.module_utils.metadata import set_finalizer
from ansible_collections.cloudkit.provisioning.plugins.module_utils.status import record_event

PURGED = "purged"  # the controller no longer knows the job: it ended long ago
EVENT_REASONS = {
    "delete": "CleanupDeleted",
    "remove_finalizer": "CleanupFinalizerRemoved",
    "cancel": "CleanupJobCanceled",
}


def _meta(obj):
    return (obj or {}).get("metadata") or {}


def ref(obj, kind=None):
    """Kind, namespace, name and uid of an object, for reports."""
    metadata = _meta(obj)
    return {
        "kind": kind or obj.get("kind"),
        "namespace": metadata.get("namespace"),
        "name": metadata.get("name"),
        "uid": metadata.get("uid"),
    }


def describe_ref(target):
    """`Kind namespace/name`, or `Kind name` for what has no namespace (a controller's job)."""
    return "{} {}".format(target["kind"], "/".join(part for part in (target.get("namespace"), target["name"]) if part))


def instance_uid_of(obj, names):
    """The instance uid an object was made for: its uid label, or for a Lease its name (computeinstance-<uid>)."""
    uid = (_meta(obj).get("labels") or {}).get(names.instance_uid_label)
    if not uid and obj.get("kind") == "Lease" and (_meta(obj).get("name") or "").startswith("computeinstance-"):
        uid = _meta(obj)["name"][len("computeinstance-") :]
    return uid or None


class Instances:
    """The ComputeInstances of the cluster, by uid and by name."""

    def __init__(self, items):
        self.by_uid = dict((_meta(i).get("uid"), i) for i in items)
        self.by_name = {}
        for item in items:
            self.by_name.setdefault(_meta(item).get("name"), []).append(item)

    def get(self, uid):
        return self.by_uid.get(uid)


def orphan_reason(obj, names, instances):
    """Why `obj` (labelled for an instance) is an orphan, with the evidence; None when its instance exists."""
    uid = instance_uid_of(obj, names)
    if not uid or instances.get(uid) is not None:
        return None
    name = (_meta(obj).get("labels") or {}).get(names.instance_label)
    namesakes = [
        "{}/{} (uid {})".format(_meta(i).get("namespace"), name, _meta(i).get("uid"))
        for i in instances.by_name.get(name) or []
    ]
    evidence = {"instance_name": name, "instance_uid": uid, "namesakes": namesakes}
    if namesakes:
        return "its ComputeInstance {} (uid {}) was deleted and re-created as {}".format(
            name, uid, ", ".join(namesakes)
        ), evidence
    return f"its ComputeInstance {name} (uid {uid}) no longer exists", evidence


def job_ended(status):
    """Whether a job status (or PURGED) means the job has ended."""
    return status == PURGED or status in aap.TERMINAL_STATUSES


def lease_decision(lease, instance, job_id, job_status, controller_host, now=None):
    """("delete" | "keep", reason) for an instance Lease, or None when there is nothing to say.

    `instance` is the live instance of the Lease's uid (None when gone); `job_id` the holder's job on our
    controller (holder_job), `job_status` what the controller said of it (None when not asked).
    """
    holder = holder_of(lease)
    if job_id is not None and job_ended(job_status):
        return (
            "delete",
            f"its holder {holder} is job {job_id}, which has ended ({job_status} at {controller_key(controller_host)})",
        )
    lapsed = is_expired(lease, now)
    if instance is None and lapsed:
        return "delete", "its ComputeInstance no longer exists and the Lease is %s" % (
            "not held" if not holder else f"lapsed (held by {holder})"
        )
    if instance is None and job_id is not None:
        return (
            "keep",
            f"its ComputeInstance no longer exists, but its holder {holder} is job {job_id}, still {job_status}",
        )
    if holder and holder.startswith("job-") and job_id is None:
        return "keep", (
            "its holder {} is a job of another controller than {}: only that controller can say whether it ended; it is"
            " taken over when it lapses".format(holder, controller_key(controller_host) or "(none given)")
        )
    if instance is None:
        return (
            "keep",
            f"its ComputeInstance no longer exists, but its holder {holder} still renews it (a job may still act): "
            "it lapses soon",
        )
    return None


def lease_is_free(lease, job_status, now=None):
    """Whether no live job holds the Lease: none, lapsed, or held by a job the controller says ended."""
    return lease is None or is_expired(lease, now) or job_ended(job_status)


def finalizer_decision(instance, names, objects_left, active_jobs, lease_free, jobs_known):
    """("remove_finalizer" | "keep", reason) for our finalizer on an instance; None when it has none or is not being
    deleted."""
    metadata = _meta(instance)
    if names.finalizer not in (metadata.get("finalizers") or []) or not metadata.get("deletionTimestamp"):
        return None
    if not jobs_known:
        return (
            "keep",
            "being deleted, but the controller could not be asked whether a deprovision job is running or queued",
        )
    if active_jobs:
        return "keep", "being deleted and job(s) {} are active for it: the deprovision removes the finalizer".format(
            ", ".join("{} ({})".format(job["id"], job.get("status")) for job in active_jobs)
        )
    if objects_left:
        return (
            "keep",
            "being deleted, no job active, but its VM objects are left ({}): run the delete job again".format(
                ", ".join(describe_ref(o) for o in objects_left)
            ),
        )
    if not lease_free:
        return "keep", "being deleted, but its Lease is held and live: a job may still act"
    return "remove_finalizer", (
        "being deleted since {}, no provision or deprovision job running or queued, no VM objects left and its"
        " Lease free: nothing will remove {}".format(metadata["deletionTimestamp"], names.finalizer)
    )


def cancel_reason(identity, instances):
    """Why an active job is to be canceled (its instance is gone), with evidence; None while its instance exists."""
    if identity.uid and instances.get(identity.uid) is not None:
        return None
    if not identity.uid and any(
        _meta(i).get("namespace") == identity.namespace for i in instances.by_name.get(identity.name) or []
    ):
        return None
    return "its ComputeInstance {}/{} (uid {}) no longer exists".format(
        identity.namespace, identity.name, identity.uid or "unknown"
    )


class Cleanup:
    """One cleanup run: gather, decide, and with `apply` act; `report()` is the module's result."""

    def __init__(
        self,
        client,
        names,
        controller=None,
        controller_host=None,
        templates=(),
        organization=None,
        namespaces=(),
        cancel_jobs=False,
        apply=False,
        hostname=None,
    ):
        self.client = client
        self.names = names
        self.instance_resource = contract_resources(names)[0]
        self.controller = controller
        self.controller_host = controller_host
        self.templates = [t for t in templates if t]
        self.organization = organization
        self.namespaces = list(namespaces or [])
        self.cancel_jobs = cancel_jobs
        self.apply = apply
        self.holder = holder_identity(
            run_id=f"cleanup-{uuid.uuid4().hex[:8]}", hostname=hostname or socket.gethostname()
        )
        self.actions = []
        self.kept = []
        self.warnings = []
        self._job_status = {}

    # -- gathering ---------------------------------------------------------------

    def _list(self, resource, selector):
        if not self.namespaces:
            return self.client.list(resource, label_selector=selector)["items"]
        return [
            item
            for namespace in self.namespaces
            for item in self.client.list(resource, namespace, label_selector=selector)["items"]
        ]

    def _instances(self):
        # Cluster-wide: an object's instance may live in any namespace (VM objects live in the Tenant's).
        return Instances(self.client.list(self.instance_resource)["items"])

    def job_status(self, job_id):
        """The controller's status of a job (PURGED when it no longer knows it); cached for the run."""
        if job_id not in self._job_status:
            try:
                self._job_status[job_id] = self.controller.get_job(job_id).get("status")
            except aap.NotFound:
                self._job_status[job_id] = PURGED
        return self._job_status[job_id]

    def _lease_job(self, lease):
        """(holder's job id on our controller or None, its status or None)."""
        if self.controller is None:
            return None, None
        job_id = holder_job(holder_of(lease), self.controller_host)
        return job_id, (self.job_status(job_id) if job_id is not None else None)

    def _active_jobs(self):
        """{instance uid or (namespace, name): [job facts]} of the templates' active jobs; None when the controller
        cannot say."""
        if self.controller is None or not self.templates:
            return None
        found = {}
        for name in self.templates:
            try:
                template, kind = self.controller.find_template_any(name, self.organization)
                for job, identity in self.controller.instance_jobs(template, kind):
                    facts = {
                        "id": job["id"],
                        "status": job.get("status"),
                        "template": name,
                        "template_type": kind,
                        "identity": identity,
                    }
                    found.setdefault(identity.uid or (identity.namespace, identity.name), []).append(facts)
            except aap.ControllerError as error:
                self.warnings.append(f"cannot list the active jobs of template {name!r}: {error.message}")
                return None
        return found

    # -- deciding ----------------------------------------------------------------

    def _act(self, action, target, reason, evidence, instance=None, apply=None):
        entry = {
            "action": action,
            "target": target,
            "reason": reason,
            "evidence": evidence,
            "done": False,
            "outcome": "planned",
            "instance": ref(instance, "ComputeInstance") if instance is not None else None,
        }
        self.actions.append(entry)
        if self.apply and apply is not None:
            try:
                done, outcome = apply()
            except (KubeError, aap.ControllerError) as error:
                done, outcome = False, f"failed: {error.message}"
            entry.update(done=done, outcome=outcome)
            if done and instance is not None:
                self._event(instance, entry)
        return entry

    def _keep(self, target, reason, evidence=None):
        self.kept.append({"target": target, "reason": reason, "evidence": evidence or {}})

    def _event(self, instance, entry):
        message = "cleanup ({}): {} {}: {}".format(
            self.holder, entry["action"].replace("_", " "), describe_ref(entry["target"]), entry["reason"]
        )
        try:
            record_event(self.client, instance, EVENT_REASONS[entry["action"]], message, "Normal")
        except KubeError as error:
            self.warnings.append(f"could not record an Event on {describe_ref(ref(instance))}: {error.message}")

    def run(self):
        """Decide (and with apply, act on) everything; returns report()."""
        selector = self.names.instance_uid_label
        # Objects first, instances after: an object made for an instance that exists now is made after its instance,
        # so every object listed here whose instance exists is matched by the instance list that follows.
        objects = [(resource, obj) for resource in DELETE_ORDER for obj in self._list(resource, selector)]
        leases = self._list(LEASE, selector)
        instances = self._instances()
        active = self._active_jobs()
        self._orphans(objects, instances)
        self._leases(leases, instances)
        self._finalizers(instances, objects, leases, active)
        if self.cancel_jobs:
            self._cancels(instances, active)
        return self.report()

    def _orphans(self, objects, instances):
        for resource, obj in objects:
            found = orphan_reason(obj, self.names, instances)
            if found is None:
                continue
            reason, evidence = found
            namesakes = instances.by_name.get(evidence["instance_name"]) or []
            self._act(
                "delete",
                ref(obj, resource.kind),
                reason,
                evidence,
                instance=namesakes[0] if len(namesakes) == 1 else None,
                apply=lambda resource=resource, obj=obj: self._delete_orphan(resource, obj),
            )

    def _delete_orphan(self, resource, obj):
        uid = instance_uid_of(obj, self.names)
        if self._instances().get(uid) is not None:  # cannot happen (uids are not reused); checked all the same
            return False, f"kept: ComputeInstance uid {uid} exists"
        deleted = delete_exactly(self.client, resource, obj)  # uid precondition: never a namesake made since
        return deleted, "deleted" if deleted else "already gone"

    def _leases(self, leases, instances):
        for lease in leases:
            uid = instance_uid_of(lease, self.names)
            instance = instances.get(uid)
            job_id, status = self._lease_job(lease)
            decision = lease_decision(lease, instance, job_id, status, self.controller_host)
            if decision is None:
                continue
            verdict, reason = decision
            target = ref(lease, "Lease")
            evidence = {
                "holder": holder_of(lease),
                "holder_job": job_id,
                "holder_job_status": status,
                "instance_exists": instance is not None,
                "renew_time": (lease.get("spec") or {}).get("renewTime"),
                "lease_duration": (lease.get("spec") or {}).get("leaseDurationSeconds"),
            }
            if verdict == "keep":
                self._keep(target, reason, evidence)
                continue
            self._act(
                "delete",
                target,
                reason,
                evidence,
                instance=instance,
                apply=lambda lease=lease: self._delete_lease(lease),
            )

    def _delete_lease(self, judged):
        """Delete the Lease exactly as judged: same holder, same resourceVersion (a take-over since keeps it)."""
        metadata = judged["metadata"]
        current = self.client.get_or_none(LEASE, metadata["name"], metadata["namespace"])
        if current is None:
            return False, "already gone"
        if _meta(current).get("resourceVersion") != metadata.get("resourceVersion"):
            return False, f"kept: the Lease changed since it was judged (now held by {holder_of(current)})"
        try:
            self.client.delete(
                LEASE,
                metadata["name"],
                metadata["namespace"],
                preconditions={"resourceVersion": metadata["resourceVersion"], "uid": metadata["uid"]},
            )
        except KubeNotFound:
            return False, "already gone"
        except KubeError as error:
            if error.status == 409:
                return False, "kept: the Lease changed since it was judged"
            raise
        return True, "deleted"

    def _objects_of(self, uid, objects):
        return [ref(obj, resource.kind) for resource, obj in objects if instance_uid_of(obj, self.names) == uid]

    def _instance_jobs(self, active, instance):
        metadata = _meta(instance)
        return (active or {}).get(metadata.get("uid"), []) + (active or {}).get(
            (metadata.get("namespace"), metadata.get("name")), []
        )

    def _finalizers(self, instances, objects, leases, active):
        lease_by_uid = dict((instance_uid_of(lease, self.names), lease) for lease in leases)
        for instance in instances.by_uid.values():
            metadata = _meta(instance)
            if self.namespaces and metadata.get("namespace") not in self.namespaces:
                continue
            lease = lease_by_uid.get(metadata.get("uid"))
            status = self._lease_job(lease)[1] if lease is not None else None
            left = self._objects_of(metadata.get("uid"), objects)
            jobs = self._instance_jobs(active, instance)
            decision = finalizer_decision(
                instance, self.names, left, jobs, lease_is_free(lease, status), active is not None
            )
            if decision is None:
                continue
            verdict, reason = decision
            target = dict(ref(instance, "ComputeInstance"), finalizer=self.names.finalizer)
            evidence = {
                "deletion_timestamp": metadata.get("deletionTimestamp"),
                "finalizers": metadata.get("finalizers"),
                "active_jobs": [dict((k, v) for k, v in job.items() if k != "identity") for job in jobs],
                "objects_left": left,
                "lease_holder": holder_of(lease),
                "lease_holder_job_status": status,
            }
            if verdict == "keep":
                self._keep(target, reason, evidence)
                continue
            dead = [holder_of(lease)] if lease is not None and job_ended(status) else []
            self._act(
                "remove_finalizer",
                target,
                reason,
                evidence,
                instance=instance,
                apply=lambda instance=instance, dead=dead: self._remove_finalizer(instance, dead),
            )

    def _remove_finalizer(self, judged, dead_holders):
        """Holding the instance's Lease, as a job would: check again, then remove only our finalizer (uid tested)."""
        metadata = _meta(judged)
        namespace, name, uid = metadata["namespace"], metadata["name"], metadata["uid"]
        lock = InstanceLock(
            self.client,
            namespace,
            uid,
            self.holder,
            MIN_LEASE_DURATION,
            labels=self.names.instance_labels(name, uid),
            owner={"apiVersion": judged.get("apiVersion"), "kind": judged.get("kind"), "name": name, "uid": uid},
            dead_holders=dead_holders,
        )
        acquired, lease, _previous, _ours = lock.try_acquire()
        if not acquired:
            return False, "kept: the instance's Lease is %s" % (
                f"held by {holder_of(lease)}" if lease else "being changed"
            )
        try:
            live = self.client.get_or_none(self.instance_resource, name, namespace)
            if live is None or _meta(live).get("uid") != uid:
                return False, "kept: the ComputeInstance is gone"
            left = [
                ref(obj, resource.kind)
                for resource in DELETE_ORDER
                for obj in self.client.list(resource, label_selector=self.names.instance_label_selector(uid))["items"]
            ]
            active = self._active_jobs()
            jobs = self._instance_jobs(active, live)
            decision = finalizer_decision(live, self.names, left, jobs, True, active is not None)
            if decision is None or decision[0] != "remove_finalizer":
                return False, "kept: %s" % (decision[1] if decision else "nothing to remove any more")
            result = set_finalizer(
                self.client, self.instance_resource, name, namespace, self.names.finalizer, False, live=live, uid=uid
            )
            return result["changed"], "removed" if result["changed"] else "already removed"
        except InstanceGone:
            return False, "kept: the ComputeInstance was re-created"
        finally:
            lock.release()

    def _cancels(self, instances, active):
        for jobs in (active or {}).values():
            for job in jobs:
                identity = job["identity"]
                reason = cancel_reason(identity, instances)
                if reason is None:
                    continue
                target = {
                    "kind": "job" if job["template_type"] == "job" else "workflow job",
                    "namespace": None,
                    "name": str(job["id"]),
                    "uid": None,
                }
                evidence = {
                    "template": job["template"],
                    "status": job["status"],
                    "instance": {"namespace": identity.namespace, "name": identity.name, "uid": identity.uid},
                }
                self._act("cancel", target, reason, evidence, apply=lambda job=job: self._cancel(job))

    def _cancel(self, job):
        identity = job["identity"]
        live = (
            self.client.get_or_none(self.instance_resource, identity.name, identity.namespace)
            if identity.name and identity.namespace
            else None
        )
        if live is not None and (not identity.uid or _meta(live).get("uid") == identity.uid):
            return False, "kept: the ComputeInstance exists again"
        requested = self.controller.cancel(job["id"], job["template_type"])
        return requested, "cancel requested" if requested else "already finished"

    def report(self):
        return {
            "apply": self.apply,
            "holder": self.holder,
            "actions": self.actions,
            "kept": self.kept,
            "summary": {
                "planned": len(self.actions),
                "done": sum(1 for a in self.actions if a["done"]),
                "kept": len(self.kept),
            },
            "warnings": self.warnings,
        }
