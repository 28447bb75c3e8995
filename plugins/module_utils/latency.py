# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Where the time of a provision or deprovision went: the jobs' phase Events, and the report that reads them back.

A job notes the moment each phase ends (the modules return them as ``timings``); the last status write of the job
records them all as Events on the instance, each with its own eventTime, after the lock is released, so the path to
Ready carries no extra request. The report joins those Events with the instance's own timestamps and the controller's
job records (created, started, finished) into one duration per phase, per run and as percentiles over many runs.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import math
import re
from typing import Optional
from collections.abc import Iterable

from ansible_collections.cloudkit.provisioning.plugins.module_utils.aap import NotFound as TemplateNotFound
from ansible_collections.cloudkit.provisioning.plugins.module_utils.envelope import EnvelopeError, identify
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_errors import KubeError
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_resources import (
    STATIC_RESOURCES,
    contract_resources,
)
from ansible_collections.cloudkit.provisioning.plugins.module_utils.lock import holder_job
from ansible_collections.cloudkit.provisioning.plugins.module_utils.status import EVENT_COMPONENT, record_event
from ansible_collections.cloudkit.provisioning.plugins.module_utils.times import micro_time, parse_time, utc_now

EVENT = STATIC_RESOURCES[("v1", "Event")]

PROVISION = "Provision"
DEPROVISION = "Deprovision"
ACTIONS = (PROVISION, DEPROVISION)

# A job's phase marks (the keys of the modules' `timings`) and the Event reason each is recorded under, in job order.
MARKS = (
    ("deletion_requested", "DeletionRequested"),
    ("job_started", "JobStarted"),
    ("lock_wait_begun", "LockWaitBegun"),
    ("lock_acquired", "LockAcquired"),
    ("vm_applied", "VirtualMachineApplied"),
    ("datavolume_imported", "DataVolumeImported"),
    ("vm_ready", "VirtualMachineReady"),
    ("vm_deleted", "VirtualMachineDeleted"),
    ("status_written", "StatusWritten"),
    ("finalizer_removed", "FinalizerRemoved"),
    ("lock_released", "LockReleased"),
)
REASON_BY_MARK = dict(MARKS)
MARK_BY_REASON = dict((reason, mark) for mark, reason in MARKS)
# Not a moment: who held the lock while this job waited (goes into the LockAcquired Event's note).
WAITED_FOR = "lock_waited_for"
_WAITED_FOR_NOTE = re.compile(r"waited for (\S+)")

# The phases of a run, each between two marks (controller marks: controller_created, controller_started; the instance's:
# requested, operator_observed). Contiguous, so they add up to the run's total.
_TO_THE_LOCK = (
    ("queue", "requested", "controller_created"),
    ("launch", "controller_created", "controller_started"),
    ("job_startup", "controller_started", "lock_wait_begun"),
    ("lock_wait", "lock_wait_begun", "lock_acquired"),
)
PHASES = {
    PROVISION: _TO_THE_LOCK
    + (
        ("vm_apply", "lock_acquired", "vm_applied"),
        ("import", "vm_applied", "datavolume_imported"),
        ("boot", "datavolume_imported", "vm_ready"),
        ("bookkeeping", "vm_ready", "status_written"),
        ("operator_observed", "status_written", "operator_observed"),
    ),
    DEPROVISION: _TO_THE_LOCK
    + (
        ("vm_delete", "lock_acquired", "vm_deleted"),
        ("bookkeeping", "vm_deleted", "finalizer_removed"),
    ),
}
PHASE_NAMES = (
    "queue",
    "launch",
    "job_startup",
    "lock_wait",
    "vm_apply",
    "import",
    "boot",
    "vm_delete",
    "bookkeeping",
    "operator_observed",
)
PHASE_LABELS = {
    "queue": "queue",
    "launch": "launch",
    "job_startup": "job startup",
    "lock_wait": "lock wait",
    "vm_apply": "VM apply",
    "import": "import",
    "boot": "boot",
    "vm_delete": "VM delete",
    "bookkeeping": "bookkeeping",
    "operator_observed": "operator observed",
}
MODES = ("EDA", "AAP Direct", "hand run")


class LatencyError(ValueError):
    """Bad input to the report or to the phase Events; the message names the field."""


# --------------------------------------------------------------------------------------------- the job's side


def check_timings(timings, field: str = "timings") -> dict[str, str]:
    """The phase marks of `timings` as MicroTime strings; unknown marks and non-times fail naming the field."""
    if timings is None:
        return {}
    if not isinstance(timings, dict):
        raise LatencyError(f"{field} must be a mapping of phase mark to time, got {type(timings).__name__}")
    checked = {}
    for mark, value in timings.items():
        if mark == WAITED_FOR:
            if value is not None and not isinstance(value, str):
                raise LatencyError(f"{field}.{mark} must be a lock holder name, got {value!r}")
            if value:
                checked[mark] = value
            continue
        if mark not in REASON_BY_MARK:
            raise LatencyError(
                "{} has unknown phase mark {!r}; known: {}".format(
                    field, mark, ", ".join(list(REASON_BY_MARK) + [WAITED_FOR])
                )
            )
        if value in (None, ""):
            continue
        moment = parse_time(value)
        if moment is None:
            raise LatencyError(f"{field}.{mark} must be an RFC 3339 time, got {value!r}")
        checked[mark] = micro_time(moment)
    return checked


def phase_events(timings: dict[str, str], action: str, holder: str) -> list[tuple[str, str, str]]:
    """(reason, note, MicroTime) of each phase Event for checked `timings`, in time order."""
    if action not in ACTIONS:
        raise LatencyError("action must be one of {}, got {!r}".format(", ".join(ACTIONS), action))
    events = []
    for mark, reason in MARKS:
        if mark not in timings:
            continue
        note = "{} job {}: {}".format(action.lower(), holder, mark.replace("_", " "))
        if mark == "lock_acquired" and timings.get(WAITED_FOR):
            note += f"; waited for {timings[WAITED_FOR]}"
        events.append((reason, note, timings[mark]))
    return sorted(events, key=lambda event: event[2])


def record_phase_events(
    client, obj: dict, action: str, holder: str, timings: dict[str, str]
) -> tuple[list[dict], list[str]]:
    """Record the phase Events of one job on `obj`; returns (the Events as result entries, warnings).

    A failure is a warning, never fatal: the job's work is done by then.
    """
    written, warnings = [], []
    for reason, note, moment in phase_events(timings, action, holder):
        try:
            record_event(client, obj, reason, note, moment=parse_time(moment), action=action, reporting_instance=holder)
        except KubeError as error:
            warnings.append(f"could not record phase event {reason}: {error.message}")
            continue
        written.append({"reason": reason, "message": note, "event_time": moment, "action": action})
    return written, warnings


# --------------------------------------------------------------------------------------------- the report's side

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def window_bound(value: Optional[str], field: str, now=None):
    """A window bound: an RFC 3339 time, or a duration before now such as 30m, 2h, 7d; None when unset."""
    if value in (None, ""):
        return None
    moment = parse_time(value)
    if moment is not None:
        return moment
    match = _DURATION.match(str(value).strip())
    if not match:
        raise LatencyError(f"{field} must be an RFC 3339 time or a duration such as 90s, 30m, 2h or 7d, got {value!r}")
    return (now or utc_now()) - datetime.timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def job_mode(extra_vars) -> str:
    """EDA when ansible-rulebook launched the job (its ansible_eda carries the rule), else AAP Direct."""
    if isinstance(extra_vars, str):
        try:
            extra_vars = json.loads(extra_vars)
        except ValueError:
            return "AAP Direct"
    eda = (extra_vars or {}).get("ansible_eda") if isinstance(extra_vars, dict) else None
    if isinstance(eda, dict) and ("rule" in eda or "ruleset" in eda):
        return "EDA"
    return "AAP Direct"


def _payload_metadata(extra_vars) -> dict:
    try:
        return identify(extra_vars or "{}").payload.get("metadata") or {}
    except EnvelopeError:
        return {}


def runs_from_events(events: Iterable[dict]) -> dict[tuple[str, str, str], dict]:
    """Our phase Events grouped by (instance uid, action, holder): {marks: {mark: datetime}, waited_for, instance}."""
    runs = {}
    for event in events:
        if event.get("reportingComponent") != EVENT_COMPONENT or event.get("action") not in ACTIONS:
            continue
        mark = MARK_BY_REASON.get(event.get("reason"))
        moment = parse_time(event.get("eventTime"))
        involved = event.get("involvedObject") or {}
        if mark is None or moment is None or not involved.get("uid"):
            continue
        key = (involved["uid"], event["action"], event.get("reportingInstance") or "")
        run = runs.setdefault(
            key,
            {
                "marks": {},
                "waited_for": None,
                "instance": {
                    "namespace": involved.get("namespace"),
                    "name": involved.get("name"),
                    "uid": involved["uid"],
                },
            },
        )
        run["marks"][mark] = moment
        found = _WAITED_FOR_NOTE.search(event.get("message") or event.get("note") or "")
        if mark == "lock_acquired" and found:
            run["waited_for"] = found.group(1)
    return runs


def spec_changed_at(instance: Optional[dict], generation, before=None):
    """When the spec was last requested: creationTimestamp for generation 1, else the last managedFields entry that
    touched spec (at or before `before`); None when the API server keeps no managedFields."""
    if not instance:
        return None
    metadata = instance.get("metadata") or {}
    if generation in (None, 1, "1"):
        return parse_time(metadata.get("creationTimestamp"))
    times = []
    for entry in metadata.get("managedFields") or []:
        if entry.get("subresource") or "f:spec" not in (entry.get("fieldsV1") or {}):
            continue
        moment = parse_time(entry.get("time"))
        if moment is not None and (before is None or moment <= before):
            times.append(moment)
    return max(times) if times else None


def operator_observed_at(instance: Optional[dict], after):
    """When the operator wrote status.reconciledConfigVersion after our status write (its managedFields entry).

    managedFields times have whole seconds: a write in the same second as ours counts, and is reported as at `after`.
    """
    if not instance or after is None:
        return None
    floor = after.replace(microsecond=0)
    for entry in (instance.get("metadata") or {}).get("managedFields") or []:
        status = (entry.get("fieldsV1") or {}).get("f:status") or {}
        moment = parse_time(entry.get("time"))
        if (
            entry.get("subresource") == "status"
            and "f:reconciledConfigVersion" in status
            and moment
            and moment >= floor
        ):
            return max(moment, after)
    return None


def _seconds(start, end) -> Optional[float]:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)


def build_run(
    action: str,
    instance_ref: dict,
    marks: dict,
    job: Optional[dict] = None,
    holder: Optional[str] = None,
    waited_for: Optional[str] = None,
    had_events: bool = True,
) -> dict:
    """One run's phases from its marks (datetimes); what cannot be known is listed in `missing` with why."""
    phases, missing = {}, []
    for name, start, end in PHASES[action]:
        phases[name] = _seconds(marks.get(start), marks.get(end))
        if phases[name] is None:
            missing.append(name)
    known = [(value, name) for name, value in phases.items() if value is not None]
    ends = [
        marks.get(mark)
        for mark in ("operator_observed", "status_written", "finalizer_removed", "vm_ready", "vm_deleted")
    ]
    end = next((moment for moment in ends if moment is not None), None)
    start = marks.get("requested") or marks.get("controller_created") or marks.get("job_started")
    why = []
    if not had_events:
        why.append(
            "no phase Events of ours: the job ran before this collection recorded them, failed before its last "
            "write, or the Events expired (the API server keeps them for an hour by default)"
        )
    if job is None:
        why.append("no controller job record (a hand run, or no controller was asked)")
    if marks.get("requested") is None:
        why.append("request time unknown (a spec change without managedFields, or a deletion no job recorded)")
    if action == PROVISION and marks.get("operator_observed") is None and marks.get("status_written") is not None:
        why.append("the operator's status write after ours is not recorded (no managedFields, or not yet)")
    return {
        "instance": instance_ref,
        "run": action.lower(),
        "mode": job["mode"] if job else "hand run",
        "job": job,
        "holder": holder,
        "waited_for": waited_for,
        "marks": dict((mark, micro_time(moment)) for mark, moment in sorted(marks.items(), key=lambda item: item[1])),
        "phases": phases,
        "missing": missing,
        "missing_why": why,
        "total": _seconds(start, end),
        "slowest": max(known)[1] if known else None,
    }


def percentile(values: list[float], fraction: float) -> Optional[float]:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, int(math.ceil(fraction * len(ordered))) - 1)]


def summarize(runs: list[dict]) -> list[dict]:
    """p50/p95 per phase for each (run, mode) group, and the slowest phase (largest p50, then p95)."""
    groups = {}
    for run in runs:
        groups.setdefault((run["run"], run["mode"]), []).append(run)
    summary = []
    for (kind, mode), members in sorted(groups.items()):
        phases = {}
        for name, _start, _end in PHASES[kind.capitalize()]:
            values = [run["phases"][name] for run in members if run["phases"].get(name) is not None]
            phases[name] = {"count": len(values), "p50": percentile(values, 0.5), "p95": percentile(values, 0.95)}
        totals = [run["total"] for run in members if run["total"] is not None]
        ranked = [(stats["p50"], stats["p95"], name) for name, stats in phases.items() if stats["count"]]
        summary.append(
            {
                "run": kind,
                "mode": mode,
                "runs": len(members),
                "phases": phases,
                "total": {"count": len(totals), "p50": percentile(totals, 0.5), "p95": percentile(totals, 0.95)},
                "slowest": max(ranked)[2] if ranked else None,
            }
        )
    return summary


def _cell(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def table(runs: list[dict], summary: list[dict]) -> list[str]:
    """The report as text lines: one row per run, then p50 and p95 per group; seconds, '-' where unknown."""
    columns = list(PHASE_NAMES)
    header = ["instance", "run", "mode", "job"] + [PHASE_LABELS[name] for name in columns] + ["total", "slowest"]
    rows = []
    for run in runs:
        job = run["job"]["id"] if run["job"] else (run["holder"] or "-")
        rows.append(
            ["{}/{}".format(run["instance"]["namespace"], run["instance"]["name"]), run["run"], run["mode"], str(job)]
            + [_cell(run["phases"].get(name)) if name in run["phases"] else "" for name in columns]
            + [_cell(run["total"]), PHASE_LABELS.get(run["slowest"], "-")]
        )
    for group in summary:
        for stat in ("p50", "p95"):
            rows.append(
                [f"{stat} ({group['runs']} runs)", group["run"], group["mode"], ""]
                + [_cell(group["phases"][name][stat]) if name in group["phases"] else "" for name in columns]
                + [_cell(group["total"][stat]), PHASE_LABELS.get(group["slowest"], "-")]
            )
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header] + rows]
    for run in runs:
        if run["missing"]:
            lines.append(
                "{}/{} {}{}: missing {} ({})".format(
                    run["instance"]["namespace"],
                    run["instance"]["name"],
                    run["run"],
                    " job {}".format(run["job"]["id"]) if run["job"] else "",
                    ", ".join(PHASE_LABELS[name] for name in run["missing"]),
                    "; ".join(run["missing_why"]) or "not recorded",
                )
            )
        if run["waited_for"]:
            lines.append(
                "{}/{} {}: lock wait was for {}".format(
                    run["instance"]["namespace"], run["instance"]["name"], run["run"], run["waited_for"]
                )
            )
    return lines


def to_csv(runs: list[dict]) -> str:
    """One row per run, a column per phase (seconds, empty when unknown), for spreadsheets."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["namespace", "name", "uid", "run", "mode", "job_id", "holder"]
        + list(PHASE_NAMES)
        + ["total", "slowest", "missing"]
    )
    for run in runs:
        writer.writerow(
            [
                run["instance"]["namespace"],
                run["instance"]["name"],
                run["instance"]["uid"],
                run["run"],
                run["mode"],
                run["job"]["id"] if run["job"] else "",
                run["holder"] or "",
            ]
            + ["" if run["phases"].get(name) is None else run["phases"][name] for name in PHASE_NAMES]
            + ["" if run["total"] is None else run["total"], run["slowest"] or "", " ".join(run["missing"])]
        )
    return out.getvalue()


class LatencyReport:
    """Collects the runs of some instances in a time window, from the API server and (optionally) the controller.

    `controller` is an aap.ControllerClient or None, `controller_host` the URL the jobs know it by (their lock holder
    names carry it); `templates` maps PROVISION/DEPROVISION to a template name. `since`/`until` are datetimes or None.
    """

    def __init__(
        self,
        client,
        names,
        controller=None,
        controller_host=None,
        templates=None,
        organization=None,
        since=None,
        until=None,
    ):
        self.client = client
        self.names = names
        self.controller = controller
        self.controller_host = controller_host
        self.warnings: list[str] = []
        self.templates = templates or {}
        self.organization = organization
        self.since = since
        self.until = until

    def instances(self, namespace: Optional[str], name: Optional[str], label_selector: Optional[str]) -> list[dict]:
        """The live instances asked about (one by name, or by label selector in a namespace or all)."""
        resource = contract_resources(self.names)[0]
        if name:
            found = self.client.get_or_none(resource, name, namespace)
            return [found] if found else []
        return self.client.list(resource, namespace or None, label_selector=label_selector or None)["items"]

    def phase_runs(self, namespaces: Iterable[str]) -> dict[tuple[str, str, str], dict]:
        """Our phase Events in `namespaces`, one list request each."""
        events = []
        for namespace in sorted(set(namespaces)):
            events.extend(
                self.client.list(EVENT, namespace, field_selector=f"reportingComponent={EVENT_COMPONENT}")["items"]
            )
        return runs_from_events(events)

    def controller_jobs(self, uids: set) -> dict[tuple[str, str], dict]:
        """Controller jobs about the instances `uids` by (action, job id): facts with mode and payload metadata."""
        jobs = {}
        if self.controller is None:
            return jobs
        since = micro_time(self.since) if self.since else "1970-01-01T00:00:00Z"
        for action in ACTIONS:
            name = self.templates.get(action)
            if not name:
                continue
            try:
                template, template_type = self.controller.find_template_any(name, self.organization)
            except TemplateNotFound:
                self.warnings.append(
                    f"no job or workflow job template {name!r} on the controller: its jobs are not reported"
                )
                continue
            listed = self.controller.jobs_created_since(template, since, template_type)
            for job, identity in self.controller.instance_jobs(template, template_type, jobs=listed):
                if identity.uid not in uids:
                    continue
                facts = self.controller.describe(job, template_type)
                sent = _payload_metadata(job.get("extra_vars"))
                # The instance as the job got it: its creation time survives the instance itself.
                facts.update(
                    mode=job_mode(job.get("extra_vars")),
                    instance_uid=identity.uid,
                    generation=sent.get("generation"),
                    instance_created=sent.get("creationTimestamp"),
                )
                jobs[(action, str(job["id"]))] = facts
        return jobs

    def _in_window(self, marks: dict) -> bool:
        moments = [moment for moment in marks.values() if moment is not None]
        if not moments:
            return True
        first, last = min(moments), max(moments)
        return (self.since is None or last >= self.since) and (self.until is None or first <= self.until)

    def collect(
        self, namespace: Optional[str] = None, name: Optional[str] = None, label_selector: Optional[str] = None
    ) -> list[dict]:
        live = self.instances(namespace, name, label_selector)
        by_uid = dict((obj["metadata"]["uid"], obj) for obj in live)
        namespaces = set(obj["metadata"]["namespace"] for obj in live) | ({namespace} if namespace else set())
        event_runs = self.phase_runs(namespaces)
        if name:
            # A deleted instance is known by its Events alone (same name, any uid).
            event_runs = dict(
                (key, run) for key, run in event_runs.items() if run["instance"]["name"] == name or key[0] in by_uid
            )
        elif label_selector:
            event_runs = dict((key, run) for key, run in event_runs.items() if key[0] in by_uid)
        # else: a whole namespace, deleted instances included (their Events outlive them).
        uids = set(by_uid) | set(key[0] for key in event_runs)
        jobs = self.controller_jobs(uids)
        refs = dict(
            (uid, {"namespace": obj["metadata"]["namespace"], "name": obj["metadata"]["name"], "uid": uid})
            for uid, obj in by_uid.items()
        )
        for (uid, _action, _holder), run in event_runs.items():
            refs.setdefault(uid, run["instance"])
        runs, joined, latest = [], set(), {}
        for key, run in event_runs.items():
            written = run["marks"].get("status_written")
            if (
                key[1] == PROVISION
                and written
                and (key[0] not in latest or written > event_runs[latest[key[0]]]["marks"]["status_written"])
            ):
                latest[key[0]] = key
        for key, run in sorted(event_runs.items(), key=lambda item: min(item[1]["marks"].values())):
            uid, action, holder = key
            job_id = holder_job(holder, self.controller_host) if holder.startswith("job-") else None
            job = jobs.get((action, str(job_id))) if job_id is not None else None
            if job is not None:
                joined.add((action, str(job_id)))
            # The operator's write can answer only the last status write of ours.
            runs.append(
                self._run(
                    action,
                    refs[uid],
                    by_uid.get(uid),
                    dict(run["marks"]),
                    job,
                    holder,
                    run["waited_for"],
                    True,
                    observed=latest.get(uid) == key,
                )
            )
        for (action, job_id), job in sorted(jobs.items(), key=lambda item: item[1].get("created") or ""):
            if (action, job_id) not in joined:
                uid = job["instance_uid"]
                runs.append(
                    self._run(
                        action,
                        refs.get(uid) or {"namespace": None, "name": None, "uid": uid},
                        by_uid.get(uid),
                        {},
                        job,
                        None,
                        None,
                        False,
                    )
                )
        for uid, obj in by_uid.items():
            if not any(run["instance"]["uid"] == uid for run in runs):
                # Never provisioned (or not in the window): what the instance itself says.
                marks = {"requested": parse_time(obj["metadata"].get("creationTimestamp"))}
                runs.append(self._run(PROVISION, refs[uid], obj, marks, None, None, None, False))
        runs = [run for run in runs if self._in_window(dict((k, parse_time(v)) for k, v in run["marks"].items()))]
        return sorted(runs, key=lambda run: min(run["marks"].values()) if run["marks"] else "")

    def _run(self, action, ref, instance, marks, job, holder, waited_for, had_events, observed=False):
        """One run's marks completed from the controller's job and the instance (live, else the job's copy of it)."""
        if job is not None:
            marks["controller_created"] = parse_time(job.get("created"))
            marks["controller_started"] = parse_time(job.get("started"))
            if job.get("finished"):
                marks["controller_finished"] = parse_time(job["finished"])
        if action == DEPROVISION:
            marks.setdefault(
                "requested",
                marks.pop("deletion_requested", None)
                or parse_time(((instance or {}).get("metadata") or {}).get("deletionTimestamp")),
            )
        elif "requested" not in marks:
            generation = job.get("generation") if job else ((instance or {}).get("metadata") or {}).get("generation")
            sent = {"metadata": {"creationTimestamp": job.get("instance_created")}} if job is not None else None
            marks["requested"] = spec_changed_at(
                instance or sent, generation, marks.get("controller_created") or marks.get("job_started")
            )
        if action == PROVISION and observed and instance is not None:
            marks["operator_observed"] = operator_observed_at(instance, marks.get("status_written"))
        marks = dict((mark, moment) for mark, moment in marks.items() if moment is not None)
        return build_run(action, ref, marks, job, holder, waited_for, had_events)
