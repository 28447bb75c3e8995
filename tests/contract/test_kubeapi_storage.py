"""Contract tests: what the API server does with the objects a re-provision changes in place, or must refuse to change.

- a PersistentVolumeClaim's spec is immutable except resources.requests of a bound claim; the request goes down only to
  recover from a failed expansion, above status.capacity (1.33, RecoverVolumeExpansionFailure); it goes up only when the
  claim's StorageClass has ``allowVolumeExpansion: true`` (the PersistentVolumeClaimResize admission plugin, 403);
- a DataVolume's spec never changes after creation (CDI's validating webhook), while its metadata does;
- a LoadBalancer Service gets a node port per port, and an update that leaves one out keeps the node port of the port
  of the same name (kube-apiserver's patchAllocatedValues): a client that rewrites spec.ports does not move them.

The claim tests bind their claims by writing the status, as only the local stack lets a test do (a user's cluster binds
them with its provisioner): they skip there. CDI's webhook is played by the stand-in only (the control plane of the
tests runs no CDI): that test is ``stand_in_only``. The Service one runs anywhere.
"""
from __future__ import annotations

import uuid

import pytest
from kubernetes import client

from tests.contract.helpers import error_body

CDI = ('cdi.kubevirt.io', 'v1beta1')


def _status_of(call) -> tuple[int, dict]:
    with pytest.raises(client.ApiException) as info:
        call()
    return info.value.status, error_body(info.value)


@pytest.fixture
def storage_class(api_client):
    """A StorageClass of the test's own; ``make(allow_expansion)`` creates it and returns its name."""
    storage = client.StorageV1Api(api_client)
    made = []

    def make(allow_expansion):
        name = f'sc-{uuid.uuid4().hex[:8]}'
        body = {'metadata': {'name': name}, 'provisioner': 'example.com/test'}
        if allow_expansion is not None:
            body['allowVolumeExpansion'] = allow_expansion
        storage.create_storage_class(body)
        made.append(name)
        return name

    yield make
    for name in made:
        storage.delete_storage_class(name, _preload_content=False)


def _bound_claim(api_client, namespace, name, class_name, size='1Gi'):
    """A claim, bound as the PV controller would bind it (status written through /status)."""
    core = client.CoreV1Api(api_client)
    core.create_namespaced_persistent_volume_claim(namespace, {
        'metadata': {'name': name},
        'spec': {'accessModes': ['ReadWriteOnce'], 'storageClassName': class_name, 'resources': {'requests': {'storage': size}}}})
    body = core.read_namespaced_persistent_volume_claim(name, namespace)
    body.status = client.V1PersistentVolumeClaimStatus(phase='Bound', capacity={'storage': size}, access_modes=['ReadWriteOnce'])
    core.replace_namespaced_persistent_volume_claim_status(name, namespace, body)


def _resize(api_client, namespace, name, size):
    return client.CoreV1Api(api_client).patch_namespaced_persistent_volume_claim(name, namespace, {'spec': {'resources': {'requests': {'storage': size}}}})


def test_claim_grows_only_when_its_storage_class_allows_expansion(instrumented_api, api_client, namespace, storage_class):
    del instrumented_api
    expandable, fixed = storage_class(True), storage_class(None)
    _bound_claim(api_client, namespace, 'grows', expandable)
    grown = _resize(api_client, namespace, 'grows', '2Gi')
    assert grown.spec.resources.requests['storage'] == '2Gi'
    _bound_claim(api_client, namespace, 'fixed', fixed)
    code, body = _status_of(lambda: _resize(api_client, namespace, 'fixed', '2Gi'))
    assert code == 403 and body['reason'] == 'Forbidden'
    assert body['message'] == ('persistentvolumeclaims "fixed" is forbidden: only dynamically provisioned pvc can be resized and the '
                               'storageclass that provisions the pvc must support resize')
    assert client.CoreV1Api(api_client).read_namespaced_persistent_volume_claim('fixed', namespace).spec.resources.requests['storage'] == '1Gi'


def test_claim_never_shrinks_below_its_capacity_and_its_spec_is_otherwise_immutable(instrumented_api, api_client, namespace, storage_class):
    """1.33 (RecoverVolumeExpansionFailure): a request may go back down only to recover from an expansion that did not
    happen, staying above status.capacity; a disk's claim never goes below what it has."""
    del instrumented_api
    _bound_claim(api_client, namespace, 'c1', storage_class(True), size='2Gi')
    code, body = _status_of(lambda: _resize(api_client, namespace, 'c1', '1Gi'))
    assert code == 422 and body['details']['causes'][0]['field'] == 'spec.resources.requests.storage'
    assert body['message'] == 'PersistentVolumeClaim "c1" is invalid: spec.resources.requests.storage: Forbidden: field can not be less than status.capacity'
    _resize(api_client, namespace, 'c1', '5Gi')  # capacity stays 2Gi: no resizer runs here
    assert _resize(api_client, namespace, 'c1', '3Gi').spec.resources.requests['storage'] == '3Gi', 'recovering from a failed expansion'
    code, _body = _status_of(lambda: _resize(api_client, namespace, 'c1', '2Gi'))
    assert code == 422
    core = client.CoreV1Api(api_client)
    code, body = _status_of(lambda: core.patch_namespaced_persistent_volume_claim('c1', namespace, {'spec': {'accessModes': ['ReadWriteMany']}}))
    assert code == 422 and 'spec is immutable after creation' in body['message']


def test_unbound_claim_cannot_be_resized(instrumented_api, api_client, namespace, storage_class):
    del instrumented_api
    core = client.CoreV1Api(api_client)
    core.create_namespaced_persistent_volume_claim(namespace, {
        'metadata': {'name': 'pending'},
        'spec': {'accessModes': ['ReadWriteOnce'], 'storageClassName': storage_class(True), 'resources': {'requests': {'storage': '1Gi'}}}})
    assert core.read_namespaced_persistent_volume_claim('pending', namespace).status.phase == 'Pending'
    code, _body = _status_of(lambda: _resize(api_client, namespace, 'pending', '2Gi'))
    assert code == 422


@pytest.mark.stand_in_only(reason="CDI's validating webhook refuses DataVolume spec changes; the test control plane runs no CDI")
def test_datavolume_spec_is_immutable_and_its_metadata_is_not(instrumented_api, api_client, namespace):
    del instrumented_api
    custom = client.CustomObjectsApi(api_client)
    body = {'apiVersion': 'cdi.kubevirt.io/v1beta1', 'kind': 'DataVolume', 'metadata': {'name': 'dv1'},
            'spec': {'source': {'registry': {'url': 'docker://quay.io/containerdisks/fedora:40'}},
                     'storage': {'resources': {'requests': {'storage': '1Gi'}}}}}
    custom.create_namespaced_custom_object(*CDI, namespace, 'datavolumes', body)
    code, answer = _status_of(lambda: custom.patch_namespaced_custom_object(
        *CDI, namespace, 'datavolumes', 'dv1', {'spec': {'storage': {'resources': {'requests': {'storage': '2Gi'}}}}}))
    assert code == 422
    assert answer['message'] == 'admission webhook "datavolume-validate.cdi.kubevirt.io" denied the request:  Cannot update DataVolume Spec'
    labelled = custom.patch_namespaced_custom_object(*CDI, namespace, 'datavolumes', 'dv1', {'metadata': {'labels': {'a': 'b'}}})
    assert labelled['metadata']['labels'] == {'a': 'b'}
    assert labelled['spec']['storage']['resources']['requests']['storage'] == '1Gi'


def _service(name, ports, service_type='LoadBalancer'):
    return {'metadata': {'name': name}, 'spec': {'type': service_type, 'selector': {'app': name},
                                                 'ports': [{'name': f'tcp-{p}', 'port': p, 'targetPort': p, 'protocol': 'TCP'} for p in ports]}}


def _node_ports(service) -> dict:
    return {p.name: p.node_port for p in service.spec.ports}


def test_load_balancer_ports_get_node_ports_that_survive_a_rewrite_of_the_ports(api_client, namespace):
    core = client.CoreV1Api(api_client)
    made = core.create_namespaced_service(namespace, _service('lb', [22, 8080]))
    first = _node_ports(made)
    assert all(30000 <= port <= 32767 for port in first.values()) and len(set(first.values())) == 2
    # A JSON patch that replaces spec.ports without node ports, as a client that owns the ports sends it.
    ports = _service('lb', [22, 443])['spec']['ports']
    rewritten = core.patch_namespaced_service('lb', namespace, [{'op': 'replace', 'path': '/spec/ports', 'value': ports}])
    after = _node_ports(rewritten)
    assert after['tcp-22'] == first['tcp-22'], 'the port kept by name keeps its node port'
    assert after['tcp-443'] not in (None, first['tcp-22'])
    plain = core.create_namespaced_service(namespace, _service('plain', [80], 'ClusterIP'))
    assert plain.spec.ports[0].node_port is None
