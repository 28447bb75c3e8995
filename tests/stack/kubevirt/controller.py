"""KubeVirtController: plays KubeVirt's VM/VMI controllers and CDI's importer against an API server, over HTTP only."""
from __future__ import annotations

import json
import logging
import threading
import time

from kubernetes import client

from . import model
from .informer import REQUEST_TIMEOUT, TRANSIENT, Informer, custom_objects_api, start_synced
from .workqueue import WorkQueue

LOG = logging.getLogger(__name__)

KUBEVIRT = ('kubevirt.io', 'v1')
CDI = ('cdi.kubevirt.io', 'v1beta1')
VM, VMI, DV, PVC = 'virtualmachines', 'virtualmachineinstances', 'datavolumes', 'persistentvolumeclaims'
_API = {VM: KUBEVIRT, VMI: KUBEVIRT, DV: CDI, PVC: ('', 'v1')}
# Worth retrying later: throttling, server errors, conflicts that outlived the immediate retries, timeouts.
_RETRY_CODES = frozenset((0, 408, 409, 429, 500, 502, 503, 504))
_CONFLICT_RETRIES = 5
_WORKERS = 4


def _status_of(exc: client.ApiException) -> dict:
    """The Status body an API error carries (reason AlreadyExists, Conflict, ...; message), or {}."""
    try:
        status = json.loads(exc.body)
    except (TypeError, ValueError):
        return {}
    return status if isinstance(status, dict) else {}


class _Gone(Exception):
    """The object changed identity or disappeared while being reconciled; its own events will bring the rest."""


class KubeVirtController:
    """Background threads that make VirtualMachines, VirtualMachineInstances and DataVolumes behave as with KubeVirt and CDI.

    ``ready_delay``: seconds from a VMI's appearance to Running; ``import_delay``: seconds from a DataVolume's appearance to
    Succeeded; ``stop_delay``: seconds a deleted VMI's guest takes to stop; ``namespace``: watch only this namespace (None:
    all); ``default_storage_class``: the StorageClass made the cluster's default at start when it has none, as a cluster
    installer does (None: leave the cluster's classes alone).
    """

    def __init__(self, kubeconfig: str | None = None, ready_delay: float = 0.5, import_delay: float = 0.3, namespace: str | None = None,
                 workers: int = _WORKERS, stop_delay: float = 0.2, default_storage_class: str | None = 'standard'):
        self.kubeconfig = kubeconfig
        self.ready_delay = float(ready_delay)
        self.import_delay = float(import_delay)
        self.stop_delay = float(stop_delay)
        self.default_storage_class = default_storage_class
        self.namespace = namespace
        self._workers = workers
        self._stopping = threading.Event()
        self._queue = WorkQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._born: dict[str, float] = {}
        self._ips: dict[str, str] = {}
        self._ip_count = 0
        self._failures: dict = {}
        self._api_client: client.ApiClient | None = None
        self._api: client.CustomObjectsApi | None = None
        self.informers: dict[str, Informer] = {}

    # ----------------------------------------------------------- lifecycle
    def start(self, timeout: float = 30.0) -> KubeVirtController:
        """Start watching; returns once every kind has been listed (its watch follows from that list's resourceVersion)."""
        if self._api is not None:
            return self
        self._api_client, self._api = custom_objects_api(self.kubeconfig, self._workers + len(_API) + 4)
        handlers = {VM: self._on_vm, VMI: self._on_vmi, DV: self._on_dv, PVC: self._on_pvc}
        for plural, (group, version) in _API.items():
            self.informers[plural] = Informer(self._api, group, version, plural, self.namespace, handlers[plural], self._stopping)
        unsynced = start_synced(list(self.informers.values()), timeout)
        if unsynced is not None:
            self.stop()
            raise RuntimeError(f'kubevirt stand-in: could not list {unsynced.plural} within {timeout}s (are the CRDs installed?)')
        if self.default_storage_class:
            self._ensure_default_storage_class()
        # Workers start after every cache is full: garbage collection must not mistake "not listed yet" for "gone".
        for pos in range(self._workers):
            thread = threading.Thread(target=self._work, name=f'kubevirt-worker-{pos}')
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop every thread and join it."""
        self._stopping.set()
        self._queue.shut_down()
        for informer in self.informers.values():
            informer.stop()
        for thread in self._threads:
            thread.join()
        self._threads = []
        if self._api_client is not None:
            self._api_client.close()
        self._api_client = self._api = None

    def __enter__(self) -> KubeVirtController:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -------------------------------------------------------------- events
    def _seen(self, event: str, obj: dict) -> None:
        uid = obj['metadata'].get('uid')
        with self._lock:
            if event == 'DELETED':
                self._born.pop(uid, None)
                self._ips.pop(uid, None)
            else:
                self._born.setdefault(uid, time.monotonic())

    def _on_vm(self, event: str, vm: dict) -> None:
        self._seen(event, vm)
        meta = vm['metadata']
        namespace, name = meta['namespace'], meta['name']
        self._queue.add((VM, namespace, name))
        # The VMI's delay and failure mode come from VM annotations; deleted VMs take their VMI and owned DataVolumes along.
        self._queue.add((VMI, namespace, name))
        if event == 'DELETED':
            for dv in self.informers[DV].items(namespace):
                if any(r.get('uid') == meta['uid'] for r in model.vm_owners(dv)):
                    self._queue.add((DV, namespace, dv['metadata']['name']))

    def _on_vmi(self, event: str, vmi: dict) -> None:
        self._seen(event, vmi)
        meta = vmi['metadata']
        self._queue.add((VMI, meta['namespace'], meta['name']))
        self._queue.add((VM, meta['namespace'], meta['name']))
        for owner in model.vm_owners(vmi):
            self._queue.add((VM, meta['namespace'], owner['name']))

    def _on_dv(self, event: str, dv: dict) -> None:
        self._seen(event, dv)
        meta = dv['metadata']
        namespace, name = meta['namespace'], meta['name']
        self._queue.add((DV, namespace, name))
        for owner in model.vm_owners(dv):
            self._queue.add((VM, namespace, owner['name']))
        for vm in self.informers[VM].items(namespace):
            if name in model.referenced_datavolumes(vm):
                self._queue.add((VM, namespace, vm['metadata']['name']))

    def _on_pvc(self, _event: str, pvc: dict) -> None:
        meta = pvc['metadata']
        self._queue.add((PVC, meta['namespace'], meta['name']))

    # ------------------------------------------------------------- workers
    def _work(self) -> None:
        while True:
            key = self._queue.get()
            if key is None:
                return
            try:
                again = self._reconcile(key)
                self._failures.pop(key, None)
                if again is not None:
                    self._queue.add_after(key, again)
            except (_Gone, *TRANSIENT) as exc:
                self._retry_or_drop(key, exc)
            except Exception:  # a bug must not kill the worker; the key is retried like after an API error
                LOG.exception('kubevirt stand-in: reconciling %s failed', key)
                self._retry_or_drop(key, None)
            finally:
                self._queue.done(key)

    def _retry_or_drop(self, key, exc) -> None:
        if isinstance(exc, _Gone):
            return
        if isinstance(exc, client.ApiException) and exc.status not in _RETRY_CODES:
            # 404: gone meanwhile; 403: namespace terminating; 422: a body this stand-in cannot fix by retrying.
            if exc.status != 404:
                LOG.warning('kubevirt stand-in: %s: %s %s', key, exc.status, exc.reason)
            return
        count = self._failures.get(key, 0) + 1
        self._failures[key] = count
        self._queue.add_after(key, min(0.02 * 2 ** min(count, 7), 1.0))

    def _reconcile(self, key) -> float | None:
        plural, namespace, name = key
        if plural == DV:
            return self._reconcile_dv(namespace, name)
        if plural == PVC:
            return self._reconcile_pvc(namespace, name)
        if plural == VMI:
            return self._reconcile_vmi(namespace, name)
        return self._reconcile_vm(namespace, name)

    # ------------------------------------------------------------ API calls
    def _elapsed(self, obj: dict) -> float:
        with self._lock:
            born = self._born.setdefault(obj['metadata']['uid'], time.monotonic())
        return time.monotonic() - born

    def _get(self, plural: str, namespace: str, name: str) -> dict | None:
        group, version = _API[plural]
        try:
            return self._api.get_namespaced_custom_object(group, version, namespace, plural, name, _request_timeout=REQUEST_TIMEOUT)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _create(self, plural: str, body: dict) -> dict | None:
        """POST; None when it exists already (our cache lags behind our own create).

        Only a 409 whose Status reason is AlreadyExists means that: any other 409 (a Conflict) is retried like a 500, or the
        VM would wait for a DataVolume or VMI that was never created, with no event left to wake it.
        """
        group, version = _API[plural]
        try:
            return self._api.create_namespaced_custom_object(group, version, body['metadata']['namespace'], plural, body,
                                                             _request_timeout=REQUEST_TIMEOUT)
        except client.ApiException as exc:
            if exc.status == 409 and _status_of(exc).get('reason') == 'AlreadyExists':
                return None
            raise

    def _delete(self, plural: str, obj: dict) -> None:
        """DELETE this very object (uid precondition: never a successor of the same name); gone already is fine."""
        group, version = _API[plural]
        meta = obj['metadata']
        try:
            self._api.delete_namespaced_custom_object(group, version, meta['namespace'], plural, meta['name'],
                                                      body={'preconditions': {'uid': meta['uid']}}, _request_timeout=REQUEST_TIMEOUT)
        except client.ApiException as exc:
            if exc.status == 404:
                return
            if exc.status == 409 and 'Precondition' in str(_status_of(exc).get('message', '')):
                return
            raise

    def _write_status(self, plural: str, obj: dict, compute) -> float | None:
        """PUT .../status with ``compute(obj) -> (status, next)`` when it changed; on 409 read again and recompute."""
        group, version = _API[plural]
        meta = obj['metadata']
        for _attempt in range(_CONFLICT_RETRIES):
            status, after = compute(obj)
            if status == obj.get('status'):
                return after
            body = dict(obj, status=status)
            try:
                self._api.replace_namespaced_custom_object_status(group, version, meta['namespace'], plural, meta['name'], body,
                                                                  _request_timeout=REQUEST_TIMEOUT)
                return after
            except client.ApiException as exc:
                if exc.status != 409:
                    raise
            obj = self._get(plural, meta['namespace'], meta['name'])
            if obj is None or obj['metadata']['uid'] != meta['uid']:
                raise _Gone()
        raise client.ApiException(status=409, reason='status write kept conflicting')

    def _owner_gone(self, obj: dict) -> bool:
        """True when every VM owner of ``obj`` is gone (the cache may lag, so a miss is confirmed by a GET), like the garbage collector."""
        owners = model.vm_owners(obj)
        if not owners or len(owners) != len(obj['metadata'].get('ownerReferences') or []):
            return False
        namespace = obj['metadata']['namespace']
        for owner in owners:
            cached = self.informers[VM].get(namespace, owner['name'])
            if cached is not None and cached['metadata']['uid'] == owner.get('uid'):
                return False
            live = self._get(VM, namespace, owner['name'])
            if live is not None and live['metadata']['uid'] == owner.get('uid'):
                return False
        return True

    def _patch_finalizers(self, plural: str, obj: dict, add: str | None = None, remove: tuple = ()) -> None:
        """Add one finalizer or remove some, as a JSON patch tested against the list it was decided from."""
        group, version = _API[plural]
        meta = obj['metadata']
        before = list(meta.get('finalizers') or [])
        after = [f for f in before if f not in remove] + ([add] if add and add not in before else [])
        if after == before:
            return
        patch = [{'op': 'test', 'path': '/metadata/uid', 'value': meta['uid']},
                 {'op': 'test', 'path': '/metadata/finalizers', 'value': before} if meta.get('finalizers') is not None
                 else {'op': 'test', 'path': '/metadata/resourceVersion', 'value': meta['resourceVersion']},
                 {'op': 'add', 'path': '/metadata/finalizers', 'value': after}]
        try:
            self._api.patch_namespaced_custom_object(group, version, meta['namespace'], plural, meta['name'], patch,
                                                     _content_type='application/json-patch+json', _request_timeout=REQUEST_TIMEOUT)
        except client.ApiException as exc:
            if exc.status in (404, 422):  # gone, or it changed since the cache saw it: its next event brings it back here
                raise _Gone() from exc
            raise

    # ------------------------------------------------------- StorageClasses
    def _storage_classes(self) -> list[dict]:
        answer = client.StorageV1Api(self._api_client).list_storage_class(_request_timeout=REQUEST_TIMEOUT)
        return [self._api_client.sanitize_for_serialization(item) for item in answer.items]

    def _ensure_default_storage_class(self) -> None:
        classes = self._storage_classes()
        if model.storage_class_problem({'metadata': {'name': ''}, 'spec': {}}, classes) is None:
            return
        body = {'apiVersion': 'storage.k8s.io/v1', 'kind': 'StorageClass',
                'metadata': {'name': self.default_storage_class, 'annotations': {model.DEFAULT_CLASS_ANNOTATION: 'true'}},
                'provisioner': 'kubevirt.stand-in/local', 'reclaimPolicy': 'Delete', 'volumeBindingMode': 'Immediate',
                'allowVolumeExpansion': True}
        try:
            client.StorageV1Api(self._api_client).create_storage_class(body, _request_timeout=REQUEST_TIMEOUT)
        except client.ApiException as exc:
            if exc.status != 409:
                raise

    # ---------------------------------------------------------- DataVolume
    def _reconcile_dv(self, namespace: str, name: str) -> float | None:
        dv = self.informers[DV].get(namespace, name)
        if dv is None or dv['metadata'].get('deletionTimestamp'):
            return None
        if self._owner_gone(dv):
            self._delete(DV, dv)
            return None
        problem = None
        if ((dv.get('status') or {}).get('phase') or 'Pending') == 'Pending':
            problem = model.storage_class_problem(dv, self._storage_classes())
        if problem:
            with self._lock:  # the import starts only once the PVC can be made
                self._born[dv['metadata']['uid']] = time.monotonic()
        elif self.informers[PVC].get(namespace, name) is None:
            self._create_pvc(dv)
        elapsed = 0.0 if problem else self._elapsed(dv)
        began = time.monotonic()
        return self._write_status(
            DV, dv, lambda obj: model.datavolume_status(obj, elapsed + time.monotonic() - began, self.import_delay, problem))

    # ------------------------------------------------- PersistentVolumeClaim
    def _default_storage_class(self) -> str | None:
        """The cluster's default StorageClass (CDI's choice for a DataVolume that names none)."""
        listing = self._api.list_cluster_custom_object('storage.k8s.io', 'v1', 'storageclasses', _request_timeout=REQUEST_TIMEOUT)
        names = sorted(sc['metadata']['name'] for sc in listing.get('items') or []
                       if ((sc['metadata'].get('annotations') or {}).get(model.DEFAULT_CLASS_ANNOTATION) or '').lower() == 'true')
        return names[0] if names else None

    def _create_pvc(self, dv: dict) -> None:
        """CDI's PersistentVolumeClaim for a DataVolume: same name, owned by it, the DataVolume's size and class."""
        class_name = model.dv_storage_class(dv) or self._default_storage_class()
        body = model.pvc_for(dv, class_name)
        try:
            client.CoreV1Api(self._api_client).create_namespaced_persistent_volume_claim(
                dv['metadata']['namespace'], body, _request_timeout=REQUEST_TIMEOUT, _preload_content=False)
        except client.ApiException as exc:
            if not (exc.status == 409 and _status_of(exc).get('reason') == 'AlreadyExists'):
                raise

    def _reconcile_pvc(self, namespace: str, name: str) -> float | None:
        """Bind a claim at once, and finish an expansion (the external resizer and the kubelet): capacity follows the request."""
        pvc = self.informers[PVC].get(namespace, name)
        if pvc is None or pvc['metadata'].get('deletionTimestamp'):
            return None
        status = model.pvc_status(pvc)
        if status == pvc.get('status'):
            return None
        body = dict(pvc, status=status)
        try:
            client.CoreV1Api(self._api_client).replace_namespaced_persistent_volume_claim_status(
                name, namespace, body, _request_timeout=REQUEST_TIMEOUT, _preload_content=False)
        except client.ApiException as exc:
            if exc.status == 409:
                raise _Gone() from exc  # a newer version of the claim is on its way through the watch, which requeues it
            raise
        return None

    # -------------------------------------------------- VirtualMachineInstance
    def _vm_settings(self, vm: dict | None, vmi: dict) -> tuple[float, str | None]:
        delay = model.annotation_seconds(vmi, model.ANNOTATION_READY_DELAY)
        if delay is None:
            delay = model.annotation_seconds(vm, model.ANNOTATION_READY_DELAY)
        namespace = vmi['metadata']['namespace']
        names = model.referenced_datavolumes(vmi) + (model.referenced_datavolumes(vm) if vm else [])
        dvs = [self.informers[DV].get(namespace, n) for n in dict.fromkeys(names)]
        return (self.ready_delay if delay is None else delay), model.failure_mode(vm, vmi, dvs)

    def _ip_for(self, uid: str) -> str:
        with self._lock:
            if uid not in self._ips:
                self._ip_count += 1
                num = self._ip_count
                self._ips[uid] = f'10.0.{(num // 254) % 256}.{num % 254 + 1}'
            return self._ips[uid]

    def _reconcile_vmi(self, namespace: str, name: str) -> float | None:
        vmi = self.informers[VMI].get(namespace, name)
        if vmi is None:
            return None
        if vmi['metadata'].get('deletionTimestamp'):
            return self._finalize_vmi(vmi)
        owners = model.vm_owners(vmi)
        vm = self.informers[VM].get(namespace, owners[0]['name']) if owners else None
        if owners and self._owner_gone(vmi):
            self._delete(VMI, vmi)
            return None
        if vm is not None and owners and vm['metadata']['uid'] != owners[0].get('uid'):
            vm = None
        delay, failure = self._vm_settings(vm, vmi)
        elapsed = self._elapsed(vmi)
        began = time.monotonic()
        address = self._ip_for(vmi['metadata']['uid'])
        return self._write_status(VMI, vmi, lambda obj: model.vmi_status(obj, elapsed + time.monotonic() - began, delay, failure, address))

    def _finalize_vmi(self, vmi: dict) -> float | None:
        """A deleted VMI: its guest stops (``stop_delay``), phase Succeeded, then KubeVirt's finalizers go and the API removes it."""
        meta = vmi['metadata']
        with self._lock:
            stopping = self._born.setdefault('stop:' + meta['uid'], time.monotonic())
        remaining = self.stop_delay - (time.monotonic() - stopping)
        if remaining > 0:
            return remaining
        if ((vmi.get('status') or {}).get('phase')) not in ('Succeeded', 'Failed'):
            def stopped(obj):
                status = dict(obj.get('status') or {}, phase='Succeeded')
                status['conditions'] = model.merge_conditions(status.get('conditions'), [
                    {'type': 'Ready', 'status': 'False', 'reason': 'PodTerminating', 'message': 'the guest was shut down'}])
                status.pop('interfaces', None)
                return status, None
            self._write_status(VMI, vmi, stopped)
            return 0.01
        self._patch_finalizers(VMI, vmi, remove=(model.VM_CONTROLLER_FINALIZER, model.VMI_FINALIZER))
        with self._lock:
            self._born.pop('stop:' + meta['uid'], None)
        return None

    # ------------------------------------------------------- VirtualMachine
    def _reconcile_vm(self, namespace: str, name: str) -> float | None:
        vm = self.informers[VM].get(namespace, name)
        if vm is None:
            return None  # its VMI and DataVolumes are collected by their own reconciles (queued by _on_vm)
        uid = vm['metadata']['uid']
        deleting = bool(vm['metadata'].get('deletionTimestamp'))
        if not deleting and model.VM_CONTROLLER_FINALIZER not in (vm['metadata'].get('finalizers') or []):
            self._patch_finalizers(VM, vm, add=model.VM_CONTROLLER_FINALIZER)
            return None  # the patch's own event brings the VM back
        for template in (vm.get('spec') or {}).get('dataVolumeTemplates') or []:
            tname = ((template or {}).get('metadata') or {}).get('name')
            if tname and self.informers[DV].get(namespace, tname) is None and not vm['metadata'].get('deletionTimestamp'):
                self._create(DV, model.datavolume_from_template(vm, template))
        dvs = [self.informers[DV].get(namespace, n) for n in model.referenced_datavolumes(vm)]
        if any(model.dv_import_failed(dv) for dv in dvs):
            volumes = 'failed'
        elif all(dv is not None and (dv.get('status') or {}).get('phase') == 'Succeeded' for dv in dvs):
            volumes = 'ready'
        else:
            volumes = 'provisioning'
        vmi = self.informers[VMI].get(namespace, name)
        foreign = vmi is not None and not any(r.get('uid') == uid for r in model.vm_owners(vmi))
        if foreign:
            vmi = None  # left by an earlier VM of this name: its garbage collection (VMI reconcile) makes room
        strategy = model.run_strategy(vm)
        if deleting and vmi is None and self._get(VMI, namespace, name) is None:
            # The VM goes only after its VMI has stopped and is gone.
            self._patch_finalizers(VM, vm, remove=(model.VM_CONTROLLER_FINALIZER,))
            return None
        if vmi is not None and (deleting or strategy not in model.RUNNING_STRATEGIES + ('Manual',)):
            if not vmi['metadata'].get('deletionTimestamp'):
                self._delete(VMI, vmi)
        elif vmi is None and not foreign and not deleting and strategy in model.RUNNING_STRATEGIES and volumes == 'ready':
            vmi = self._create(VMI, model.vmi_body(vm)) or self.informers[VMI].get(namespace, name)
        failure = model.failure_mode(vm, vmi, dvs)
        return self._write_status(VM, vm, lambda obj: (model.vm_status(obj, vmi, volumes, failure), None))
