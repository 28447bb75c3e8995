# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""ComputeInstance status updates: pure merging, the guarded write, and Events.

Only the fields given change. Conditions are upserted by type with
metav1.Condition semantics: lastTransitionTime moves only when status does.
"""

from __future__ import annotations

import copy
import re
import uuid

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.cloudkit.provisioning.plugins.module_utils.guarded import guarded_write
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_errors import KubeError
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_resources import STATIC_RESOURCES
from ansible_collections.cloudkit.provisioning.plugins.module_utils.limits import (
    CONDITION_MESSAGE_MAX, EVENT_NOTE_MAX_BYTES, EVENT_REASON_MAX_BYTES, shorten,
)
from ansible_collections.cloudkit.provisioning.plugins.module_utils.metadata import check_uid
from ansible_collections.cloudkit.provisioning.plugins.module_utils.times import micro_time, rfc3339, utc_now

PHASES = ("Progressing", "Failed", "Ready", "Deleting")
CONDITION_STATUSES = ("True", "False", "Unknown")
JOB_STATES = ("Pending", "Waiting", "Running", "Succeeded", "Failed", "Canceled", "Unknown")
JOB_TYPES = ("provision", "deprovision")
_REASON_RE = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
EVENT_COMPONENT = "cloudkit-provisioning"
EVENT_TYPES = ("Normal", "Warning")
CONDITION_KEYS = ("type", "status", "reason", "message")
JOB_KEYS = ("id", "type", "state", "message", "block_deletion_on_failure", "config_version")
EVENT_KEYS = ("reason", "message", "type")


class StatusError(ValueError):
    """An invalid status option; the message names it."""


def _check_keys(value, allowed, field):
    if not isinstance(value, dict):
        raise StatusError("%s must be a mapping, got %s" % (field, type(value).__name__))
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise StatusError("%s has unknown key(s) %s; known: %s" % (field, ", ".join(unknown), ", ".join(allowed)))


def now_rfc3339():
    return rfc3339(utc_now())


def merge_conditions(existing, updates, generation, now):
    """Upsert conditions by type; returns the new list (input lists are not modified)."""
    merged = [dict(c) for c in existing or []]
    for update in updates or []:
        _check_keys(update, CONDITION_KEYS, "conditions[]")
        kind = update.get("type")
        if not kind or not _REASON_RE.match(kind):
            raise StatusError("conditions[].type must be a CamelCase word, got %r" % kind)
        status = update.get("status")
        if status not in CONDITION_STATUSES:
            raise StatusError("conditions[%s].status must be one of %s, got %r" % (kind, ", ".join(CONDITION_STATUSES), status))
        reason = update.get("reason") or kind
        if not _REASON_RE.match(reason):
            raise StatusError("conditions[%s].reason must be a CamelCase word, got %r" % (kind, reason))
        current = next((c for c in merged if c.get("type") == kind), None)
        condition = {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": shorten(update.get("message") or "", CONDITION_MESSAGE_MAX),
            "lastTransitionTime": current["lastTransitionTime"] if current and current.get("status") == status and current.get("lastTransitionTime") else now,
        }
        if generation is not None:
            condition["observedGeneration"] = generation
        if current is None:
            merged.append(condition)
        else:
            current.clear()
            current.update(condition)
    return merged


def job_record(job, now, existing=None):
    """One job in both shapes the CRD versions use: (seed-era object, jobs[] entry)."""
    _check_keys(job, JOB_KEYS, "job")
    job_id = job.get("id")
    if job_id in (None, ""):
        raise StatusError("job.id is required")
    if job.get("type") not in JOB_TYPES:
        raise StatusError("job.type must be one of %s, got %r" % (", ".join(JOB_TYPES), job.get("type")))
    if job.get("state") not in JOB_STATES:
        raise StatusError("job.state must be one of %s, got %r" % (", ".join(JOB_STATES), job.get("state")))
    try:
        block = boolean(job.get("block_deletion_on_failure") or False, strict=True)
    except TypeError:
        raise StatusError("job.block_deletion_on_failure must be a boolean, got %r" % job.get("block_deletion_on_failure"))
    legacy = {"id": str(job_id), "state": job["state"], "message": job.get("message") or "", "blockDeletionOnFailure": block}
    entry = {
        "jobID": str(job_id),
        "type": job["type"],
        "timestamp": (existing or {}).get("timestamp") or now,
        "state": job["state"],
        "message": job.get("message") or "",
        "blockDeletionOnFailure": block,
    }
    if job.get("config_version"):
        entry["configVersion"] = job["config_version"]
    return legacy, entry


def desired_status(live, options, now):
    """The status after applying `options` to the live object's status, or raise StatusError.

    options: phase, conditions, virtual_machine_reference {namespace, name},
    job {id, type, state, message, block_deletion_on_failure, config_version},
    job_records (auto | objects | list), last_restarted_at.
    """
    status = copy.deepcopy(live.get("status") or {})
    generation = (live.get("metadata") or {}).get("generation")
    phase = options.get("phase")
    if phase is not None:
        if phase not in PHASES:
            raise StatusError("phase must be one of %s, got %r" % (", ".join(PHASES), phase))
        status["phase"] = phase
    if options.get("conditions"):
        status["conditions"] = merge_conditions(status.get("conditions"), options["conditions"], generation, now)
    reference = options.get("virtual_machine_reference")
    if reference:
        if not reference.get("namespace") or not reference.get("name"):
            raise StatusError("virtual_machine_reference needs namespace and name")
        status["virtualMachineReference"] = {"namespace": reference["namespace"], "kubeVirtVirtualMachineName": reference["name"]}
    job = options.get("job")
    if job:
        records = options.get("job_records") or "auto"
        if records == "auto":
            records = "list" if "jobs" in status else "objects"
        jobs = status.get("jobs") or []
        existing = next((j for j in jobs if j.get("jobID") == str(job.get("id"))), None)
        legacy, entry = job_record(job, now, existing)
        if records == "objects":
            status["%sJob" % job["type"]] = legacy
        else:
            status["jobs"] = [entry if j is existing else j for j in jobs] + ([] if existing else [entry])
    if options.get("last_restarted_at"):
        status["lastRestartedAt"] = options["last_restarted_at"]
    return status


def status_changes(before, after):
    """The top-level status fields whose values differ."""
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def update_status(client, resource, name, namespace, options, check_mode=False, now=None, live=None, uid=None):
    """Write the status subresource conflict-safely; returns (changed, before, after, live object).

    A merge patch carrying metadata.resourceVersion is refused with 409 when
    the object moved since it was read; guarded_write then re-reads and
    re-merges, so another writer's status fields are never overwritten.
    `live` is an object just read or written by this job, saving the first read.
    """
    now = now or now_rfc3339()
    outcome = {}

    def read():
        return client.get(resource, name, namespace)

    def write(live):
        check_uid(live, uid)  # the patch carries resourceVersion, which no namesake shares
        before = live.get("status") or {}
        after = desired_status(live, options, now)
        changed_fields = status_changes(before, after)
        outcome.update(changed=bool(changed_fields), before=before, after=after, live=live)
        if not changed_fields or check_mode:
            return live
        patch = {"metadata": {"resourceVersion": live["metadata"]["resourceVersion"]}, "status": dict((k, after.get(k)) for k in changed_fields)}
        outcome["live"] = client.patch(resource, name, patch, namespace, patch_type="merge", subresource="status")
        return outcome["live"]

    guarded_write(read, write, live=live)
    return outcome["changed"], outcome["before"], outcome["after"], outcome["live"]


def record_event(client, obj, reason, message, event_type="Normal", moment=None, action=None, reporting_instance=None):
    """Create an Event about `obj` so `kubectl describe` shows it; returns the Event.

    `moment` is when it happened (default now): a phase Event written late in the job keeps the time of its phase.
    The Event carries eventTime, action and the reporting fields, so events.k8s.io/v1 serves it in full.
    """
    metadata = obj["metadata"]
    moment = moment or utc_now()
    timestamp, micro = rfc3339(moment), micro_time(moment)
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "%s.%s" % (metadata["name"], uuid.uuid4().hex[:16]), "namespace": metadata["namespace"]},
        "involvedObject": {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "name": metadata["name"],
            "namespace": metadata["namespace"],
            "uid": metadata.get("uid"),
            "resourceVersion": metadata.get("resourceVersion"),
        },
        "reason": shorten(reason, EVENT_REASON_MAX_BYTES, in_bytes=True),
        "message": shorten(message, EVENT_NOTE_MAX_BYTES, in_bytes=True),
        "type": event_type,
        "source": {"component": EVENT_COMPONENT},
        "reportingComponent": EVENT_COMPONENT,
        "reportingInstance": shorten(reporting_instance or EVENT_COMPONENT, EVENT_REASON_MAX_BYTES, in_bytes=True),
        "firstTimestamp": timestamp,
        "lastTimestamp": timestamp,
        "eventTime": micro,
        "action": shorten(action or reason, EVENT_REASON_MAX_BYTES, in_bytes=True),
        "count": 1,
    }
    return client.create(STATIC_RESOURCES[("v1", "Event")], event, metadata["namespace"])


def events_for(before, after, options):
    """The Events a status change deserves: phase changes, failures, plus an explicit one."""
    events = []
    if after.get("phase") != before.get("phase") and after.get("phase"):
        event_type = "Warning" if after["phase"] == "Failed" else "Normal"
        message = "phase %s -> %s" % (before.get("phase") or "(none)", after["phase"])
        failed = [c for c in options.get("conditions") or [] if c.get("status") == "False" and c.get("message")]
        if failed and event_type == "Warning":
            message += ": " + "; ".join(c["message"] for c in failed)
        events.append(("Phase" + after["phase"], message, event_type))
    job = options.get("job")
    if job and job.get("state") == "Failed":
        events.append(("%sJobFailed" % job["type"].capitalize(), "job %s failed: %s" % (job["id"], job.get("message") or "no message"), "Warning"))
    explicit = options.get("event")
    if explicit:
        _check_keys(explicit, EVENT_KEYS, "event")
        if not _REASON_RE.match(explicit.get("reason") or ""):
            raise StatusError("event.reason must be a CamelCase word, got %r" % explicit.get("reason"))
        if (explicit.get("type") or "Normal") not in EVENT_TYPES:
            raise StatusError("event.type must be Normal or Warning, got %r" % explicit.get("type"))
        events.append((explicit["reason"], explicit.get("message") or "", explicit.get("type") or "Normal"))
    return events


def record_events(client, obj, events):
    """Record events; failures are returned as warnings, never fatal (the status already landed)."""
    warnings = []
    for reason, message, event_type in events:
        try:
            record_event(client, obj, reason, message, event_type)
        except KubeError as error:
            warnings.append("could not record event %s: %s" % (reason, error.message))
    return warnings
