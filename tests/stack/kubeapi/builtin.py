"""Built-in kinds and the defaulting the real server applies to them."""
from __future__ import annotations

import base64
import itertools
import re
from decimal import Decimal

from .errors import APIError, invalid
from .store import ResourceType

COMMON_FIELDS = frozenset({'metadata.name', 'metadata.namespace'})


def _secret(obj: dict, _old: dict | None) -> None:
    # The real server folds stringData into data (base64) and never stores stringData.
    string_data = obj.pop('stringData', None)
    if string_data:
        data = dict(obj.get('data') or {})
        for key, val in string_data.items():
            data[key] = base64.b64encode(str(val).encode()).decode()
        obj['data'] = data
    for key, val in (obj.get('data') or {}).items():
        try:
            base64.b64decode(val, validate=True)
        except (ValueError, TypeError) as exc:
            raise APIError(400, f'illegal base64 data for key "{key}"', 'BadRequest') from exc
    obj.setdefault('type', 'Opaque')


def _namespace(obj: dict, old: dict | None) -> None:
    obj.setdefault('spec', {}).setdefault('finalizers', ['kubernetes'])
    if old is None:
        obj['status'] = {'phase': 'Active'}
    labels = dict(obj['metadata'].get('labels') or {})
    labels['kubernetes.io/metadata.name'] = obj['metadata']['name']
    obj['metadata']['labels'] = labels


def _storage_class(obj: dict, _old: dict | None) -> None:
    obj.setdefault('reclaimPolicy', 'Delete')
    obj.setdefault('volumeBindingMode', 'Immediate')


NODE_PORTS = (30000, 32767)
_QUANTITY = re.compile(r'^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$')
_FACTORS = {None: 1, 'k': 10 ** 3, 'M': 10 ** 6, 'G': 10 ** 9, 'T': 10 ** 12, 'P': 10 ** 15, 'E': 10 ** 18,
            'Ki': 2 ** 10, 'Mi': 2 ** 20, 'Gi': 2 ** 30, 'Ti': 2 ** 40, 'Pi': 2 ** 50, 'Ei': 2 ** 60}


def quantity_bytes(value) -> int | None:
    """Bytes of a resource quantity such as 10Gi (the forms this stand-in meets), None when it is not one."""
    match = _QUANTITY.match(str(value)) if value is not None else None
    return int(Decimal(match.group(1)) * _FACTORS[match.group(2)]) if match else None


def _node_ports(spec: dict, old: dict | None, allocate) -> None:
    """NodePort and LoadBalancer Services get a node port per port. As kube-apiserver's patchAllocatedValues does, an
    update that leaves one out keeps the old port's node port (matched by the port's name) unless another port uses it."""
    if spec.get('type') not in ('NodePort', 'LoadBalancer'):
        for port in spec.get('ports') or []:
            port.pop('nodePort', None)
        return
    old_spec = (old or {}).get('spec') or {}
    old_ports = old_spec.get('ports') or [] if old_spec.get('type') in ('NodePort', 'LoadBalancer') else []
    by_name = {p.get('name'): p.get('nodePort') for p in old_ports if p.get('nodePort')}
    used = {p['nodePort'] for p in spec.get('ports') or [] if p.get('nodePort')}
    for port in spec.get('ports') or []:
        if port.get('nodePort'):
            continue
        previous = by_name.get(port.get('name'))
        port['nodePort'] = previous if previous and previous not in used else allocate(used)
        used.add(port['nodePort'])


def _service_defaulter():
    ips = itertools.count(10)
    node_ports = itertools.count(0)

    def allocate(used: set) -> int:
        span = NODE_PORTS[1] - NODE_PORTS[0] + 1
        while True:
            port = NODE_PORTS[0] + next(node_ports) % span
            if port not in used:
                return port

    def _service(obj: dict, old: dict | None) -> None:
        spec = obj.setdefault('spec', {})
        spec.setdefault('type', 'ClusterIP')
        spec.setdefault('sessionAffinity', 'None')
        if spec.get('clusterIP') in (None, '') and spec['type'] != 'ExternalName':
            prev = (old or {}).get('spec', {}).get('clusterIP')
            if prev:
                spec['clusterIP'] = prev
            else:
                n = next(ips)
                spec['clusterIP'] = f'10.96.{n // 250}.{n % 250 + 1}'
            spec['clusterIPs'] = [spec['clusterIP']]
        spec.setdefault('ipFamilies', ['IPv4'])
        spec.setdefault('ipFamilyPolicy', 'SingleStack')
        for port in spec.get('ports') or []:
            port.setdefault('protocol', 'TCP')
            port.setdefault('targetPort', port.get('port'))
        _node_ports(spec, old, allocate)
        if old is None:
            obj['status'] = {'loadBalancer': {}}
    return _service


PVC_IMMUTABLE = 'Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims'


def _pvc_requests(spec: dict) -> dict:
    return ((spec or {}).get('resources') or {}).get('requests') or {}


def _pvc(obj: dict, old: dict | None) -> None:
    """Defaults and the update rules of PersistentVolumeClaims (the 1.30 validation, RecoverVolumeExpansionFailure off):
    the spec is immutable except resources.requests of a bound claim, and the requested storage never goes down."""
    spec = obj.setdefault('spec', {})
    spec.setdefault('volumeMode', 'Filesystem')
    name = obj['metadata']['name']
    if old is None:
        obj['status'] = {'phase': 'Pending'}
        return
    old_spec = old.get('spec') or {}
    if spec == old_spec:
        return

    def without_requests(value: dict) -> dict:
        value = dict(value)
        value['resources'] = {k: v for k, v in (value.get('resources') or {}).items() if k != 'requests'}
        return value
    bound = ((old.get('status') or {}).get('phase')) == 'Bound'
    if without_requests(spec) != without_requests(old_spec) or not bound:
        raise invalid('PersistentVolumeClaim', '', name, [{'reason': 'FieldValueForbidden', 'field': 'spec', 'message': PVC_IMMUTABLE}])
    before = quantity_bytes(_pvc_requests(old_spec).get('storage'))
    after = quantity_bytes(_pvc_requests(spec).get('storage'))
    if before is not None and after is not None and after < before:
        raise invalid('PersistentVolumeClaim', '', name, [{'reason': 'FieldValueForbidden', 'field': 'spec.resources.requests.storage',
                                                            'message': 'Forbidden: field can not be less than previous value'}])


def _crd(obj: dict, _old: dict | None) -> None:
    spec = obj.get('spec') or {}
    names = spec.get('names') or {}
    status = dict(obj.get('status') or {})
    status['acceptedNames'] = {k: v for k, v in names.items() if k in ('plural', 'singular', 'kind', 'listKind', 'shortNames', 'categories')}
    status['conditions'] = [
        {'type': 'NamesAccepted', 'status': 'True', 'reason': 'NoConflicts', 'message': 'no conflicts found',
         'lastTransitionTime': obj['metadata'].get('creationTimestamp')},
        {'type': 'Established', 'status': 'True', 'reason': 'InitialNamesAccepted', 'message': 'the initial names have been accepted',
         'lastTransitionTime': obj['metadata'].get('creationTimestamp')},
    ]
    status['storedVersions'] = [v['name'] for v in spec.get('versions') or [] if v.get('storage')]
    obj['status'] = status


def builtin_types() -> list[ResourceType]:
    """A fresh set of built-in types (each server gets its own Service IP allocator)."""
    return [
        ResourceType('', 'v1', 'Namespace', 'namespaces', 'namespace', False, ['ns'], status_subresource=True, strategic_merge=True,
                     field_selectors=COMMON_FIELDS | {'status.phase'}, normalize=_namespace, returns_deleted_object=True),
        ResourceType('', 'v1', 'Secret', 'secrets', 'secret', True, strategic_merge=True, field_selectors=COMMON_FIELDS | {'type'},
                     normalize=_secret),
        ResourceType('', 'v1', 'ConfigMap', 'configmaps', 'configmap', True, ['cm'], strategic_merge=True, field_selectors=COMMON_FIELDS),
        ResourceType('', 'v1', 'Service', 'services', 'service', True, ['svc'], ['all'], status_subresource=True, strategic_merge=True,
                     field_selectors=COMMON_FIELDS | {'spec.clusterIP', 'spec.type'}, normalize=_service_defaulter(),
                     returns_deleted_object=True),
        ResourceType('', 'v1', 'PersistentVolumeClaim', 'persistentvolumeclaims', 'persistentvolumeclaim', True, ['pvc'], ['all'],
                     status_subresource=True, strategic_merge=True, field_selectors=COMMON_FIELDS, normalize=_pvc),
        ResourceType('', 'v1', 'Event', 'events', 'event', True, ['ev'], strategic_merge=True,
                     field_selectors=COMMON_FIELDS | {'involvedObject.kind', 'involvedObject.namespace', 'involvedObject.name',
                                                      'involvedObject.uid', 'involvedObject.apiVersion', 'involvedObject.resourceVersion',
                                                      'involvedObject.fieldPath', 'reason', 'reportingComponent', 'source', 'type'}),
        ResourceType('coordination.k8s.io', 'v1', 'Lease', 'leases', 'lease', True, strategic_merge=True, field_selectors=COMMON_FIELDS),
        ResourceType('storage.k8s.io', 'v1', 'StorageClass', 'storageclasses', 'storageclass', False, ['sc'], strategic_merge=True,
                     field_selectors=COMMON_FIELDS, normalize=_storage_class),
        ResourceType('apiextensions.k8s.io', 'v1', 'CustomResourceDefinition', 'customresourcedefinitions', 'customresourcedefinition',
                     False, ['crd', 'crds'], ['api-extensions'], status_subresource=True, has_generation=True, field_selectors=COMMON_FIELDS,
                     normalize=_crd),
    ]
