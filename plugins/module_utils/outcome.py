# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""A job's outcome on its ComputeInstance, in order: finalizer, status, annotation, Events, lock release, phase Events.

The service behind `computeinstance_status` (as kubernetes.core's K8sService is behind its modules). It is its own
module because it joins `status.py`, `metadata.py`, `lock.py` and `latency.py`, and `latency.py` imports `status.py`.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_errors import KubeError, NotFound
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_resources import contract_resources
from ansible_collections.cloudkit.provisioning.plugins.module_utils.latency import (
    LatencyError, check_timings, record_phase_events,
)
from ansible_collections.cloudkit.provisioning.plugins.module_utils.lock import InstanceDeleting, InstanceLock
from ansible_collections.cloudkit.provisioning.plugins.module_utils.metadata import (
    BeingDeleted, check_uid, set_annotation, set_finalizer,
)
from ansible_collections.cloudkit.provisioning.plugins.module_utils.status import (
    StatusError,
    events_for,
    record_events,
    status_changes,
    update_status,
)
from ansible_collections.cloudkit.provisioning.plugins.module_utils.times import micro_time, utc_now

PLACEHOLDER_VERSIONS = ("unknown", "none", "null", "undefined")
STATUS_OPTIONS = ("phase", "conditions", "virtual_machine_reference", "job", "job_records", "last_restarted_at")


def write_outcome(module) -> dict[str, Any]:
    """Write what `module.params` (computeinstance_status's options) ask for; the module's result.

    `module` is a KubeModule: its client, its lock fence, its warnings and its failures (`fail_json`, `fail_api`,
    which end the run with the result so far).
    """
    params = module.params
    version = params["reconciled_config_version"]
    if version is not None and (not version.strip() or version.strip().lower() in PLACEHOLDER_VERSIONS):
        module.fail_json(
            msg=f"reconciled_config_version must be the desired config version that was provisioned, got {version!r}"
        )

    try:
        explicit_events = events_for({}, {}, {"event": params["event"]}) if params["event"] else []
    except StatusError as exc:
        module.fail_json(msg=str(exc))
    if params["phase_events"] and not params["lock_holder"]:
        module.fail_json(msg="phase_events needs lock_holder: it names the job in each phase Event")
    try:
        timings = (
            check_timings(params["phase_events"]["timings"], "phase_events.timings") if params["phase_events"] else {}
        )
    except LatencyError as exc:
        module.fail_json(msg=str(exc))

    identity, names = module.identify_instance()
    resource = contract_resources(names)[0]
    client = module.client
    check_mode = module.check_mode
    name, namespace = identity["name"], identity["namespace"]
    result = {
        "changed": False, "changed_fields": [], "events": [], "lock_released": False, "timings": {}, "phase_events": [],
    }
    options = {key: params[key] for key in STATUS_OPTIONS}
    owned = None
    uid = identity.get("uid")
    try:
        live = client.get(resource, name, namespace)
        # Checked before any write: a job must never write on a namesake created after it was launched.
        check_uid(live, uid)
        uid = live["metadata"]["uid"]
        deleting = live["metadata"].get("deletionTimestamp")
        if deleting and (params["add_finalizer"] or version is not None or params["phase"] in ("Ready", "Progressing")):
            raise InstanceDeleting(
                f"ComputeInstance {namespace}/{name} is being deleted (since {deleting}): no provisioning outcome is "
                "written"
            )
        if params["lock_holder"] and not check_mode:
            module.hold_lease(live, names, params["lock_holder"])
        finalizers_before = list(live["metadata"].get("finalizers") or [])
        if params["add_finalizer"]:
            owned = set_finalizer(client, resource, name, namespace, names.finalizer, True, check_mode=check_mode,
                                  live=live, uid=uid)
            live = owned["live"]
            if owned["changed"]:
                result["changed"] = True
                result["changed_fields"].append("finalizers")
        changed, before, after, live = update_status(client, resource, name, namespace, options,
                                                     check_mode=check_mode, live=live, uid=uid)
    except NotFound:
        module.warn(f"ComputeInstance {namespace}/{name} does not exist: no status written")
        return dict(result, exists=False)
    except (StatusError, BeingDeleted) as exc:
        module.fail_json(msg=str(exc))
    except KubeError as error:
        module.fail_api(error, f"cannot update the status of ComputeInstance {namespace}/{name}")
    finalizers = owned["finalizers"] if owned else finalizers_before
    result.update(exists=True, changed=result["changed"] or changed, status=after, finalizers=finalizers,
                  changed_fields=sorted(result["changed_fields"] + status_changes(before, after)))

    annotation = names.reconciled_config_version_annotation
    annotation_before = (live["metadata"].get("annotations") or {}).get(annotation)
    if version is not None:
        try:
            annotation_changed, live = set_annotation(client, resource, name, namespace, annotation, version.strip(),
                                                      check_mode=check_mode, live=live, uid=uid)
        except KubeError as error:
            module.fail_api(error, f"cannot set {annotation} on ComputeInstance {namespace}/{name}", **result)
        if annotation_changed:
            result["changed"] = True
            result["changed_fields"].append("annotation")
    result["resource_version"] = live["metadata"].get("resourceVersion")
    written = ("phase", "conditions", "virtual_machine_reference", "job", "last_restarted_at")
    if any(params[key] for key in written) or version is not None:
        result["timings"]["status_written"] = micro_time(utc_now())

    if params["record_events"] and not check_mode:
        events = events_for(before, after, options if changed else {})
        events.extend(explicit_events)
        for warning in record_events(client, live, events):
            module.warn(warning)
        result["events"] = [{"reason": r, "message": m, "type": t} for r, m, t in events]

    if params["remove_finalizer"]:
        try:
            let_go = set_finalizer(client, resource, name, namespace, names.finalizer, False, check_mode=check_mode,
                                   live=live, uid=uid)
        except KubeError as error:
            module.fail_api(error, f"cannot remove finalizer {names.finalizer} from ComputeInstance {namespace}/{name}",
                            **result)
        if let_go["changed"]:
            result["changed"] = True
            result["changed_fields"].append("finalizers")
            finalizers = result["finalizers"] = let_go["finalizers"]
            result["timings"]["finalizer_removed"] = micro_time(utc_now())
    # The job's last write is done: the instance (and with it the Lease) may be gone any moment now.
    module.release_fence()
    if params["release_lock"] and not check_mode:
        lock = InstanceLock(client, namespace, live["metadata"]["uid"], params["lock_holder"])
        try:
            result["lock_released"], _holder = lock.release()
        except KubeError as error:
            module.fail_api(error, f"status written; cannot release Lease {lock.namespace}/{lock.name}", **result)
        if result["lock_released"]:
            result["timings"]["lock_released"] = micro_time(utc_now())
    if params["phase_events"] and not check_mode:
        # Last, off the path to Ready: the operator may already see Ready while these are written.
        result["phase_events"], warnings = record_phase_events(client, live, params["phase_events"]["action"],
                                                               params["lock_holder"],
                                                               dict(timings, **result["timings"]))
        for warning in warnings:
            module.warn(warning)

    if result["changed"] and module._diff:
        result["diff"] = {
            "before": {"status": before, "annotation": annotation_before, "finalizers": finalizers_before},
            "after": {"status": after, "annotation": version.strip() if version is not None else annotation_before,
                      "finalizers": finalizers},
        }
    return result
