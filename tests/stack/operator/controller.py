"""Operator: plays the cloudkit operator (a Go controller) against an API server, EDA webhooks or an AAP controller, over HTTP only."""
from __future__ import annotations

import copy
import logging
import threading
import time

from kubernetes import client

from tests.stack.kubevirt.informer import REQUEST_TIMEOUT, TRANSIENT, Informer, custom_objects_api, start_synced
from tests.stack.kubevirt.workqueue import WorkQueue

from . import contract
from .clients import NETWORK_ERRORS, AAPClient, AAPError, post_webhook
from .contract import DEPROVISION, LATER, PROVISION, SEED, Names

LOG = logging.getLogger(__name__)

MODES = ('eda', 'aap')
VARIANTS = (SEED, LATER)
JSON_PATCH = 'application/json-patch+json'
# Worth retrying later: throttling, server errors, timeouts, conflicts that outlived the immediate retries.
_RETRY_CODES = frozenset((0, 408, 409, 429, 500, 502, 503, 504))
_WRITE_ATTEMPTS = 5
_MAX_BACKOFF = 30.0


def _backoff(errors: int) -> float:
    """Seconds to wait after ``errors`` consecutive failed HTTP calls to the Ansible side: 0.25 * 2^n, capped."""
    return min(0.25 * 2 ** min(errors, 10), _MAX_BACKOFF)


class _Gone(Exception):
    """The instance disappeared (or its writes kept failing their preconditions) while being reconciled; its events bring the rest."""


class Operator:
    """The cloudkit operator's side of docs/contract.md, on background threads (see README.md for the rules it follows).

    ``mode`` ``eda``: POST the instance to ``create_webhook`` / ``delete_webhook``; ``aap``: launch ``provision_template`` /
    ``deprovision_template`` on the controller at ``aap_url`` (ends in ``/api/controller``). ``variant`` ``seed`` writes
    ``status.provisionJob``/``deprovisionJob`` and wraps the instance as ``ansible_eda.event.payload``; ``later`` writes
    ``status.jobs[]`` and wraps it as ``osac_job_vars.resource``. ``resend_after``: seconds before an unreconciled instance
    is sent (or launched) again; ``max_sends``: at most that many sends per spec version (None: no limit, as upstream).
    ``history`` lists every action taken (dicts with ``time`` = time.monotonic() and ``action``).
    """

    def __init__(self, kubeconfig: str | None = None, mode: str = 'eda', api_group: str = 'cloudkit.openshift.io', variant: str = SEED,
                 create_webhook: str | None = None, delete_webhook: str | None = None, webhook_headers: dict | None = None,
                 aap_url: str | None = None, aap_token: str | None = None, provision_template: str = 'innabox-create-compute-instance',
                 deprovision_template: str = 'innabox-delete-compute-instance', poll_interval: float = 0.5, namespace: str | None = None,
                 resend_after: float = 30.0, max_sends: int | None = None, resync_period: float = 30.0, workers: int = 4):
        if mode not in MODES:
            raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
        if variant not in VARIANTS:
            raise ValueError(f'variant must be one of {VARIANTS}, got {variant!r}')
        if mode == 'eda' and not (create_webhook and delete_webhook):
            raise ValueError('eda mode needs create_webhook and delete_webhook')
        if mode == 'aap' and not aap_url:
            raise ValueError('aap mode needs aap_url (ending in /api/controller)')
        self.kubeconfig = kubeconfig
        self.mode, self.variant = mode, variant
        self.names = Names(api_group)
        self.create_webhook, self.delete_webhook = create_webhook, delete_webhook
        self.webhook_headers = dict(webhook_headers or {})
        self.aap = AAPClient(aap_url, aap_token) if mode == 'aap' else None
        self.templates = {PROVISION: provision_template, DEPROVISION: deprovision_template}
        self.poll_interval = float(poll_interval)
        self.namespace = namespace
        self.resend_after = float(resend_after)
        self.max_sends = max_sends
        self.resync_period = float(resync_period)
        self.history: list[dict] = []
        self._workers = workers
        self._stopping = threading.Event()
        self._queue = WorkQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._api_client: client.ApiClient | None = None
        self._api: client.CustomObjectsApi | None = None
        self._instances: Informer | None = None
        self._tenants: Informer | None = None
        # In-memory bookkeeping, by instance uid or job id; the job records themselves live in the instance's status.
        self._failures: dict = {}        # work-queue key -> consecutive reconcile failures (workers only)
        self._errors: dict = {}          # ('delete'|'launch', uid) -> consecutive HTTP failures
        self._sends: dict = {}           # uid -> {version, count, last, ok, errors}: create webhooks / provision launches
        self._delete_sent: set = set()   # uids whose delete webhook was sent
        self._marked_deleting: set = set()
        self._jobs: dict = {}            # job id -> {collection, version, finished}
        self._canceled: set = set()      # job ids a cancel was sent for
        self._blocked: set = set()       # deprovision job ids whose failure was recorded
        self._unrecorded: dict = {}      # (uid, job type) -> job launched but not yet in status (its status write failed)

    # ----------------------------------------------------------- lifecycle
    def start(self, timeout: float = 30.0) -> Operator:
        """Start watching; returns once ComputeInstances and Tenants have been listed."""
        if self._api is not None:
            return self
        self._stopping.clear()
        self._api_client, self._api = custom_objects_api(self.kubeconfig, self._workers + 6)
        group = self.names.group
        self._instances = Informer(self._api, group, contract.VERSION, contract.CI_PLURAL, self.namespace, self._on_instance, self._stopping)
        self._tenants = Informer(self._api, group, contract.VERSION, contract.TENANT_PLURAL, self.namespace, self._on_tenant, self._stopping)
        unsynced = start_synced([self._instances, self._tenants], timeout)
        if unsynced is not None:
            self.stop()
            raise RuntimeError(f'operator stand-in: could not list {unsynced.plural}.{group} within {timeout}s (are the CRDs installed?)')
        for pos in range(self._workers):
            thread = threading.Thread(target=self._work, name=f'operator-worker-{pos}')
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop every thread and join it."""
        self._stopping.set()
        self._queue.shut_down()
        for informer in (self._instances, self._tenants):
            if informer is not None:
                informer.stop()
        for thread in self._threads:
            thread.join()
        self._threads = []
        self._instances = self._tenants = None
        if self._api_client is not None:
            self._api_client.close()
        self._api_client = self._api = None

    def __enter__(self) -> Operator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -------------------------------------------------------------- events
    def _on_instance(self, event: str, obj: dict) -> None:
        meta = obj['metadata']
        if event == 'DELETED':
            self._forget(meta.get('uid'))
            self._record('gone', obj)
            return
        self._queue.add((meta['namespace'], meta['name']))

    def _on_tenant(self, _event: str, tenant: dict) -> None:
        namespace = tenant['metadata'].get('namespace')
        for obj in self._instances.items(namespace) if self._instances is not None else []:
            if not (obj.get('status') or {}).get('tenantReference'):
                self._queue.add((namespace, obj['metadata']['name']))

    def _forget(self, uid: str | None) -> None:
        with self._lock:
            self._sends.pop(uid, None)
            self._delete_sent.discard(uid)
            self._marked_deleting.discard(uid)
            self._errors.pop(('delete', uid), None)
            self._errors.pop(('launch', uid), None)
            for job_type in (PROVISION, DEPROVISION):
                self._unrecorded.pop((uid, job_type), None)

    def _record(self, action: str, obj: dict, **details) -> dict:
        meta = obj.get('metadata') or {}
        entry = {'time': time.monotonic(), 'action': action, 'namespace': meta.get('namespace'), 'name': meta.get('name'),
                 'uid': meta.get('uid')}
        entry.update(details)
        with self._lock:
            self.history.append(entry)
        LOG.info('operator: %s %s/%s %s', action, entry['namespace'], entry['name'], details)
        return entry

    # ------------------------------------------------------------- workers
    def _work(self) -> None:
        while True:
            key = self._queue.get()
            if key is None:
                return
            try:
                again = self._reconcile(key)
                self._failures.pop(key, None)
                if again is not None and not self._stopping.is_set():
                    self._queue.add_after(key, again)
            except _Gone:
                self._failures.pop(key, None)
            except TRANSIENT as exc:
                self._retry_or_drop(key, exc)
            except Exception:  # a bug must not kill the worker; the key is retried like after an API error
                LOG.exception('operator stand-in: reconciling %s failed', key)
                self._retry_or_drop(key, None)
            finally:
                self._queue.done(key)

    def _retry_or_drop(self, key, exc) -> None:
        if isinstance(exc, client.ApiException) and exc.status not in _RETRY_CODES:
            if exc.status != 404:
                LOG.warning('operator stand-in: %s: %s %s', key, exc.status, exc.reason)
            return
        count = self._failures.get(key, 0) + 1
        self._failures[key] = count
        self._queue.add_after(key, min(0.05 * 2 ** min(count, 10), _MAX_BACKOFF))

    def _reconcile(self, key) -> float | None:
        """One pass over an instance; the seconds after which to look again (None: only on its next event)."""
        obj = self._get(*key)
        if obj is None:
            return None
        if not contract.is_deleting(obj):
            obj = self._ensure_finalizer(obj)
        obj = self._write_status(obj)
        if contract.is_deleting(obj):
            return self._finalize(obj)
        if contract.is_unmanaged(obj, self.names):
            return None
        if self.mode == 'aap':
            return self._aap_provision(obj)
        if contract.is_reconciled(obj, self.names):
            return None
        return self._eda_provision(obj)

    # ------------------------------------------------------------ API calls
    def _get(self, namespace: str, name: str) -> dict | None:
        try:
            return self._api.get_namespaced_custom_object(self.names.group, contract.VERSION, namespace, contract.CI_PLURAL, name,
                                                          _request_timeout=REQUEST_TIMEOUT)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _reread(self, obj: dict) -> dict:
        """The live object, or _Gone when it disappeared or became another object of the same name."""
        meta = obj['metadata']
        live = self._get(meta['namespace'], meta['name'])
        if live is None or live['metadata'].get('uid') != meta.get('uid'):
            raise _Gone()
        return live

    def _json_patch(self, obj: dict, ops: list) -> dict:
        meta = obj['metadata']
        return self._api.patch_namespaced_custom_object(self.names.group, contract.VERSION, meta['namespace'], contract.CI_PLURAL, meta['name'],
                                                        ops, _content_type=JSON_PATCH, _request_timeout=REQUEST_TIMEOUT)

    def _ensure_finalizer(self, obj: dict) -> dict:
        """Add the operator's own finalizer with a JSON patch guarded by the resourceVersion (other finalizers untouched)."""
        own = self.names.operator_finalizer
        for _attempt in range(_WRITE_ATTEMPTS):
            current = contract.finalizers(obj)
            if own in current or contract.is_deleting(obj):
                return obj
            guard = {'op': 'test', 'path': '/metadata/resourceVersion', 'value': obj['metadata']['resourceVersion']}
            add = ({'op': 'add', 'path': '/metadata/finalizers/-', 'value': own} if current
                   else {'op': 'add', 'path': '/metadata/finalizers', 'value': [own]})
            try:
                obj = self._json_patch(obj, [guard, add])
            except client.ApiException as exc:
                if exc.status not in (404, 409, 422):
                    raise
                obj = self._reread(obj)
                continue
            self._record('finalizer_added', obj, finalizer=own)
            return obj
        raise client.ApiException(status=409, reason='adding the finalizer kept conflicting')

    def _remove_finalizer(self, obj: dict) -> None:
        """Remove the operator's own finalizer (test + remove at its index); the object may go right away."""
        own = self.names.operator_finalizer
        for _attempt in range(_WRITE_ATTEMPTS):
            current = contract.finalizers(obj)
            if own not in current:
                return
            pos = current.index(own)
            ops = [{'op': 'test', 'path': f'/metadata/finalizers/{pos}', 'value': own},
                   {'op': 'remove', 'path': f'/metadata/finalizers/{pos}'}]
            try:
                self._json_patch(obj, ops)
            except client.ApiException as exc:
                if exc.status == 404:
                    return
                if exc.status not in (409, 422):
                    raise
                try:
                    obj = self._reread(obj)
                except _Gone:
                    return
                continue
            self._record('finalizer_removed', obj, finalizer=own)
            return
        raise client.ApiException(status=409, reason='removing the finalizer kept conflicting')

    def _write_status(self, obj: dict, change=None) -> dict:
        """PUT /status with the operator's fields (and ``change(status)``, applied in place) when it changed; 409: read again, redo."""
        meta = obj['metadata']
        for _attempt in range(_WRITE_ATTEMPTS):
            tenant = None
            if not (obj.get('status') or {}).get('tenantReference') and self._tenants is not None:
                tenant = contract.pick_tenant(obj, self._tenants.items(obj['metadata'].get('namespace')), self.names)
            status = contract.operator_status(obj, self.names, tenant)
            uid = obj['metadata'].get('uid')
            with self._lock:
                marked = uid in self._marked_deleting
            if contract.is_deleting(obj) and marked:
                # Deleting is set once, when the deletion is first seen; later phases are the Ansible side's.
                status['phase'] = (obj.get('status') or {}).get('phase') or 'Deleting'
            if change is not None:
                change(status)
            if status != (obj.get('status') or {}):
                body = copy.deepcopy(obj)
                body['status'] = status
                try:
                    obj = self._api.replace_namespaced_custom_object_status(self.names.group, contract.VERSION, meta['namespace'],
                                                                            contract.CI_PLURAL, meta['name'], body, _request_timeout=REQUEST_TIMEOUT)
                except client.ApiException as exc:
                    if exc.status not in (404, 409):
                        raise
                    obj = self._reread(obj)
                    continue
            if contract.is_deleting(obj) and not marked:
                with self._lock:
                    self._marked_deleting.add(uid)
            return obj
        raise client.ApiException(status=409, reason='status write kept conflicting')

    # ------------------------------------------------------------ send bookkeeping
    def _send_due(self, uid: str, version: str, not_before: float = 0.0) -> float | None:
        """Seconds until the next send for this spec version may go (0: now; None: max_sends reached); at least ``not_before``."""
        with self._lock:
            rec = self._sends.get(uid)
            if rec is None or rec['version'] != version:
                return not_before
            if self.max_sends is not None and rec['count'] >= self.max_sends:
                return None
            wait = self.resend_after if rec['ok'] else min(_backoff(rec['errors']), self.resend_after)
            return max(not_before, rec['last'] + wait - time.monotonic())

    def _sent(self, uid: str, version: str, ok: bool) -> float:
        """Note one send attempt; the seconds until the next may go."""
        with self._lock:
            rec = self._sends.get(uid)
            if rec is None or rec['version'] != version:
                rec = self._sends[uid] = {'version': version, 'count': 0, 'errors': 0}
            rec['count'] += 1
            rec['last'] = time.monotonic()
            rec['ok'] = ok
            rec['errors'] = 0 if ok else rec['errors'] + 1
            return self.resend_after if ok else min(_backoff(rec['errors']), self.resend_after)

    def _post(self, kind: str, url: str, obj: dict) -> bool:
        """POST the instance to a webhook; True on any 2xx."""
        version = (obj.get('status') or {}).get('desiredConfigVersion')
        try:
            code = post_webhook(url, obj, self.webhook_headers)
        except NETWORK_ERRORS as exc:
            self._record('webhook', obj, kind=kind, url=url, status=None, error=str(exc), sent=False, config_version=version)
            return False
        sent = 200 <= code < 300
        self._record('webhook', obj, kind=kind, url=url, status=code, error=None, sent=sent, config_version=version)
        return sent

    # ------------------------------------------------------------------- EDA
    def _eda_provision(self, obj: dict) -> float | None:
        uid, version = obj['metadata']['uid'], obj['status']['desiredConfigVersion']
        due = self._send_due(uid, version)
        if due is None or due > 0:
            return due
        return self._sent(uid, version, self._post('create', self.create_webhook, obj))

    def _eda_finalize(self, obj: dict) -> float | None:
        uid = obj['metadata']['uid']
        if self.names.ansible_finalizer not in contract.finalizers(obj):
            self._remove_finalizer(obj)
            return None
        with self._lock:
            sent = uid in self._delete_sent
        if sent:
            # Wait for the Ansible side to drop its finalizer (the watch brings that); no failure signal exists upstream.
            return self.resync_period
        if self._post('delete', self.delete_webhook, obj):
            with self._lock:
                self._delete_sent.add(uid)
            return self.resync_period
        with self._lock:
            errors = self._errors.get(('delete', uid), 0) + 1
            self._errors[('delete', uid)] = errors
        return _backoff(errors)

    def _finalize(self, obj: dict) -> float | None:
        if self.names.operator_finalizer not in contract.finalizers(obj):
            return None
        if contract.is_unmanaged(obj, self.names):
            # Hands off: nothing is sent; the operator only lets go of its own finalizer.
            self._remove_finalizer(obj)
            return None
        if self.mode == 'eda':
            return self._eda_finalize(obj)
        return self._aap_finalize(obj)

    # ------------------------------------------------------------------- AAP
    def _envelope(self, obj: dict) -> dict:
        if self.variant == LATER:
            return {'osac_job_vars': {'resource': obj}}
        return {'ansible_eda': {'event': {'payload': obj}}}

    def _job_info(self, job: dict, job_type: str, fallback_version: str) -> dict:
        """Collection and spec version of a job (from memory; a job launched before a restart is taken as a job for ``fallback_version``)."""
        with self._lock:
            info = self._jobs.get(job['id'])
            if info is None:
                collection = 'jobs'
                if self.aap is not None:
                    kind = self.aap.cached_kind(self.templates[job_type])
                    collection = 'workflow_jobs' if kind == 'workflow_job_templates' else 'jobs'
                info = self._jobs[job['id']] = {'collection': collection, 'version': job.get('configVersion') or fallback_version,
                                                'finished': None}
            return info

    def _launch(self, obj: dict, job_type: str) -> float | None:
        version = obj['status']['desiredConfigVersion']
        template = self.templates[job_type]
        block = job_type == DEPROVISION
        extra_vars = self._envelope(obj)
        try:
            collection, job_id = self.aap.launch(template, extra_vars)
        except (AAPError, *NETWORK_ERRORS) as exc:
            self._record('launch', obj, type=job_type, template=template, job_id=None, error=str(exc), config_version=version,
                         envelope=next(iter(extra_vars)), block_deletion_on_failure=block)
            with self._lock:
                errors = self._errors.get(('launch', obj['metadata']['uid']), 0) + 1
                self._errors[('launch', obj['metadata']['uid'])] = errors
            return _backoff(errors)
        with self._lock:
            self._errors.pop(('launch', obj['metadata']['uid']), None)
            self._jobs[job_id] = {'collection': collection, 'version': version, 'finished': None}
        self._record('launch', obj, type=job_type, template=template, job_id=job_id, error=None, config_version=version,
                     envelope=next(iter(extra_vars)), block_deletion_on_failure=block)
        state = contract.map_aap_status('pending', self.variant)
        job = {'id': job_id, 'state': state, 'message': f'AAP job {job_id} launched from {template}', 'blockDeletionOnFailure': block,
               'configVersion': version}
        with self._lock:
            self._unrecorded[(obj['metadata']['uid'], job_type)] = job
        self._record_unrecorded(obj, job_type)
        return self.poll_interval

    def _record_unrecorded(self, obj: dict, job_type: str) -> dict:
        """Write the record of a launched job whose status write has not succeeded yet (never launch twice for want of a record)."""
        key = (obj['metadata']['uid'], job_type)
        with self._lock:
            job = self._unrecorded.get(key)
        if job is None:
            return obj

        def add(status: dict) -> None:
            if (contract.latest_job(status, job_type, self.variant) or {}).get('id') != job['id']:
                contract.record_job(status, job_type, self.variant, job)

        obj = self._write_status(obj, add)
        with self._lock:
            self._unrecorded.pop(key, None)
        return obj

    def _poll(self, obj: dict, job_type: str, job: dict) -> float:
        """Look at a non-terminal job once; record a state change. Seconds until the next look (0 once it is terminal)."""
        info = self._job_info(job, job_type, obj['status']['desiredConfigVersion'])
        try:
            body = self.aap.job(info['collection'], job['id'])
        except (AAPError, *NETWORK_ERRORS) as exc:
            self._record('poll_error', obj, type=job_type, job_id=job['id'], error=str(exc))
            return max(self.poll_interval, 1.0)
        aap_status = body.get('status')
        state = contract.map_aap_status(aap_status, self.variant)
        if state != job.get('state'):
            message = f'AAP job {job["id"]} {aap_status}'
            if body.get('job_explanation'):
                message += f': {body["job_explanation"]}'
            self._write_status(obj, lambda status: contract.update_job(status, job_type, self.variant, job['id'], state, message))
            self._record('job_state', obj, type=job_type, job_id=job['id'], aap_status=aap_status, state=state, previous=job.get('state'))
        if contract.is_terminal(state):
            with self._lock:
                info['finished'] = time.monotonic()
            return 0.0
        return self.poll_interval

    def _aap_provision(self, obj: dict) -> float | None:
        obj = self._record_unrecorded(obj, PROVISION)
        version = obj['status']['desiredConfigVersion']
        job = contract.latest_job(obj['status'], PROVISION, self.variant)
        if job is not None and not contract.is_terminal(job.get('state')):
            # One provision at a time: a newer spec waits for the running job to end. Polled even once reconciled.
            return self._poll(obj, PROVISION, job)
        if contract.is_reconciled(obj, self.names):
            return None
        uid = obj['metadata']['uid']
        not_before = 0.0
        if job is not None:
            info = self._job_info(job, PROVISION, version)
            if info['version'] == version and info['finished'] is not None:
                # This version's job ended but the annotation does not match (yet): launch again resend_after after its end.
                not_before = max(0.0, info['finished'] + self.resend_after - time.monotonic())
        due = self._send_due(uid, version, not_before)
        if due is None or due > 0:
            return due
        again = self._launch(obj, PROVISION)
        with self._lock:
            launched = ('launch', uid) not in self._errors
        self._sent(uid, version, launched)
        return again

    def _aap_finalize(self, obj: dict) -> float | None:
        obj = self._record_unrecorded(self._record_unrecorded(obj, PROVISION), DEPROVISION)
        status = obj['status']
        provision = contract.latest_job(status, PROVISION, self.variant)
        if provision is not None and not contract.is_terminal(provision.get('state')):
            self._cancel(obj, provision)
            return self._poll(obj, PROVISION, provision)
        deprovision = contract.latest_job(status, DEPROVISION, self.variant)
        if deprovision is None:
            return self._launch(obj, DEPROVISION)
        if not contract.is_terminal(deprovision.get('state')):
            return self._poll(obj, DEPROVISION, deprovision)
        if deprovision['state'] == 'Succeeded':
            if self.names.ansible_finalizer in contract.finalizers(obj):
                # The job reported success but the Ansible side's finalizer is still there: wait for it to go.
                return self.resync_period
            self._remove_finalizer(obj)
            return None
        if deprovision.get('blockDeletionOnFailure'):
            with self._lock:
                first = deprovision['id'] not in self._blocked
                self._blocked.add(deprovision['id'])
            if first:
                self._record('deletion_blocked', obj, job_id=deprovision['id'], state=deprovision['state'], message=deprovision.get('message'))
            # Kept until someone clears the deprovision record (a new deprovision is then launched) or removes the finalizer.
            return None
        self._remove_finalizer(obj)
        return None

    def _cancel(self, obj: dict, job: dict) -> None:
        with self._lock:
            if job['id'] in self._canceled:
                return
        info = self._job_info(job, PROVISION, obj['status']['desiredConfigVersion'])
        try:
            code = self.aap.cancel(info['collection'], job['id'])
        except NETWORK_ERRORS as exc:
            self._record('cancel', obj, job_id=job['id'], status=None, error=str(exc))
            return
        if code < 500:
            with self._lock:
                self._canceled.add(job['id'])
        self._record('cancel', obj, job_id=job['id'], status=code, error=None, already_finished=code == 405)
