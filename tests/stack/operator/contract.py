"""The operator's side of docs/contract.md as pure functions: names from one API group, status fields, AAP states.

The names are spelled here from the contract rather than imported from the collection's ``names.py`` on purpose:
this package plays the other party, so a wrong name on the collection's side shows up as a failing test.
"""
from __future__ import annotations

import copy
import datetime

from tests.stack.seed import desired_config_version

VERSION = 'v1alpha1'
CI_PLURAL = 'computeinstances'
TENANT_PLURAL = 'tenants'
UNMANAGED_STATES = ('manual', 'unmanaged')
TERMINAL_STATES = ('Succeeded', 'Failed', 'Canceled')
SEED, LATER = 'seed', 'later'
PROVISION, DEPROVISION = 'provision', 'deprovision'
# status.jobs[] keeps this many records (the newest); older ones are dropped.
MAX_JOB_RECORDS = 10

_SEED_STATES = {'successful': 'Succeeded', 'failed': 'Failed', 'error': 'Failed', 'canceled': 'Canceled',
                'pending': 'Running', 'waiting': 'Running', 'running': 'Running'}
_LATER_STATES = dict(_SEED_STATES, pending='Pending', waiting='Waiting')


class Names:
    """Every finalizer and annotation name of docs/contract.md (Names), derived from one API group."""

    def __init__(self, api_group: str):
        self.group = api_group
        self.api_version = f'{api_group}/{VERSION}'
        self.operator_finalizer = f'{api_group}/computeinstance'
        self.ansible_finalizer = f'{api_group}/computeinstance-aap'
        self.reconciled_annotation = f'{api_group}/reconciled-config-version'
        self.management_state_annotation = f'{api_group}/management-state'
        self.tenant_annotation = f'{api_group}/tenant'


def map_aap_status(aap_status: str | None, variant: str = SEED) -> str:
    """The job state (docs/contract.md, Status) of an AAP job status; the later variant keeps Pending/Waiting/Running
    apart."""
    table = _LATER_STATES if variant == LATER else _SEED_STATES
    return table.get(aap_status or '', 'Unknown')


def is_terminal(state: str | None) -> bool:
    """Succeeded, Failed or Canceled."""
    return state in TERMINAL_STATES


def now_rfc3339() -> str:
    """The current UTC time as metav1.Time writes it."""
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def annotations(obj: dict) -> dict:
    """metadata.annotations, never None."""
    return (obj.get('metadata') or {}).get('annotations') or {}


def finalizers(obj: dict) -> list:
    """metadata.finalizers, never None."""
    return (obj.get('metadata') or {}).get('finalizers') or []


def is_deleting(obj: dict) -> bool:
    """True once metadata.deletionTimestamp is set."""
    return bool((obj.get('metadata') or {}).get('deletionTimestamp'))


def is_unmanaged(obj: dict, names: Names) -> bool:
    """The management-state annotation says manual or unmanaged."""
    return str(annotations(obj).get(names.management_state_annotation, '')).lower() in UNMANAGED_STATES


def desired_version(obj: dict) -> str:
    """status.desiredConfigVersion as the operator computes it from spec."""
    return desired_config_version(obj.get('spec') or {})


def reconciled_version(obj: dict, names: Names) -> str | None:
    """The reconciled-config-version annotation, or None."""
    return annotations(obj).get(names.reconciled_annotation) or None


def is_reconciled(obj: dict, names: Names) -> bool:
    """The Ansible side has provisioned the current spec."""
    return reconciled_version(obj, names) == desired_version(obj)


def pick_tenant(obj: dict, tenants: list, names: Names) -> dict | None:
    """The Tenant an instance belongs to: the one its ``G/tenant`` annotation names, else the only Tenant in its namespace."""
    namespace = obj['metadata'].get('namespace')
    local = [t for t in tenants if t['metadata'].get('namespace') == namespace]
    wanted = annotations(obj).get(names.tenant_annotation)
    if wanted:
        local = [t for t in local if t['metadata']['name'] == wanted]
    return local[0] if len(local) == 1 else None


def operator_status(obj: dict, names: Names, tenant: dict | None) -> dict:
    """The instance's status with the fields the operator owns brought up to date (a new dict; the input is not changed).

    desiredConfigVersion from spec; reconciledConfigVersion copied from the annotation (removed when it is absent);
    tenantReference only when missing; phase only when missing (Progressing, or Ready when reconciled) or, once the
    instance is being deleted, Deleting. Other fields (the Ansible side's) are kept as they are.
    """
    status = copy.deepcopy(obj.get('status') or {})
    status['desiredConfigVersion'] = desired_version(obj)
    reconciled = reconciled_version(obj, names)
    if reconciled is None:
        status.pop('reconciledConfigVersion', None)
    else:
        status['reconciledConfigVersion'] = reconciled
    if not status.get('tenantReference') and tenant is not None:
        status['tenantReference'] = {'name': tenant['metadata']['name'], 'namespace': tenant['metadata']['namespace']}
    if is_deleting(obj):
        status['phase'] = 'Deleting'
    elif not status.get('phase'):
        status['phase'] = 'Ready' if reconciled == status['desiredConfigVersion'] else 'Progressing'
    return status


# ------------------------------------------------------------------ job records (seed: provisionJob/deprovisionJob, later: jobs[])
def latest_job(status: dict, job_type: str, variant: str) -> dict | None:
    """The newest job record of a type, as ``{id, state, message, blockDeletionOnFailure, configVersion?}``, or None."""
    if variant == LATER:
        for record in reversed(status.get('jobs') or []):
            if record.get('type') == job_type and record.get('jobID'):
                found = dict(record)
                found['id'] = found.pop('jobID')
                return found
        return None
    record = status.get(f'{job_type}Job')
    return dict(record) if record and record.get('id') else None


def record_job(status: dict, job_type: str, variant: str, job: dict) -> None:
    """Add a new job record (``job``: id, state, message, blockDeletionOnFailure, configVersion) to ``status`` in place."""
    if variant == LATER:
        jobs = list(status.get('jobs') or [])
        jobs.append({'jobID': str(job['id']), 'type': job_type, 'timestamp': now_rfc3339(), 'state': job['state'],
                     'message': job.get('message', ''), 'blockDeletionOnFailure': bool(job.get('blockDeletionOnFailure')),
                     'configVersion': job.get('configVersion', '')})
        status['jobs'] = jobs[-MAX_JOB_RECORDS:]
        return
    status[f'{job_type}Job'] = {'id': str(job['id']), 'state': job['state'], 'message': job.get('message', ''),
                                'blockDeletionOnFailure': bool(job.get('blockDeletionOnFailure'))}


def update_job(status: dict, job_type: str, variant: str, job_id: str, state: str, message: str) -> bool:
    """Set state and message of the record of ``job_id`` in place; False when no such record is there any more."""
    if variant == LATER:
        for record in status.get('jobs') or []:
            if record.get('type') == job_type and record.get('jobID') == str(job_id):
                record['state'], record['message'] = state, message
                return True
        return False
    record = status.get(f'{job_type}Job')
    if not record or record.get('id') != str(job_id):
        return False
    record['state'], record['message'] = state, message
    return True
