"""Built-in kinds and the defaulting the real server applies to them."""
from __future__ import annotations

import base64
import itertools

from .errors import APIError
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


def _service_defaulter():
    ips = itertools.count(10)

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
        if old is None:
            obj['status'] = {'loadBalancer': {}}
    return _service


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
