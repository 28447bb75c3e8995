"""The write log (of the stand-in, or of the proxy in front of kube-apiserver), through the Python API and the admin endpoint
(skipped on a user's cluster)."""
from __future__ import annotations

import pytest
from kubernetes import client, config, watch

from tests.contract.helpers import admin_call


def _mark(server) -> int:
    entries = server.write_log()
    return entries[-1]['seq'] if entries else 0


def _admin(server, method: str, query: str = '', token: str | None = None):
    return admin_call(server, method, f'/_admin/writes{query}', token=token)


def test_mutations_are_logged_reads_are_not(instrumented_api, api_client, namespace):
    core = client.CoreV1Api(api_client)
    mark = _mark(instrumented_api)
    created = core.create_namespaced_config_map(namespace, {'metadata': {'name': 'cm'}, 'data': {'a': '1'}})
    core.read_namespaced_config_map('cm', namespace)
    core.list_namespaced_config_map(namespace)
    list(watch.Watch().stream(core.list_namespaced_config_map, namespace, timeout_seconds=1))
    patched = core.patch_namespaced_config_map('cm', namespace, {'data': {'a': '2'}}, field_manager='wl')
    core.delete_namespaced_config_map('cm', namespace)
    entries = [e for e in instrumented_api.write_log(mark) if e['namespace'] == namespace]
    assert [(e['method'], e['name'], e['status']) for e in entries] == [('POST', None, 201), ('PATCH', 'cm', 200), ('DELETE', 'cm', 200)]
    post, patch, delete = entries
    assert post['path'] == f'/api/v1/namespaces/{namespace}/configmaps' and post['kind'] == 'configmaps' and post['subresource'] is None
    assert post['resource_version'] == created.metadata.resource_version
    assert patch['resource_version'] == patched.metadata.resource_version and patch['query'] == {'fieldManager': 'wl'}
    assert delete['resource_version'] is None  # a Status answer: the configmap is gone, no object returned
    assert all(e['user_agent'] and e['user_agent'].startswith('OpenAPI-Generator') for e in entries)
    assert post['seq'] < patch['seq'] < delete['seq']
    assert post['time'] <= patch['time'] <= delete['time'] and post['monotonic'] <= delete['monotonic']
    assert instrumented_api.write_log(patch['seq'])[0]['seq'] == delete['seq']


def test_status_subresource_and_custom_resources(instrumented_api, api_client, namespace):
    co = client.CustomObjectsApi(api_client)
    mark = _mark(instrumented_api)
    vm = {'apiVersion': 'kubevirt.io/v1', 'kind': 'VirtualMachine', 'metadata': {'name': 'vm1'}, 'spec': {'template': {}}}
    co.create_namespaced_custom_object('kubevirt.io', 'v1', namespace, 'virtualmachines', vm)
    done = co.patch_namespaced_custom_object_status('kubevirt.io', 'v1', namespace, 'virtualmachines', 'vm1',
                                                    {'status': {'printableStatus': 'Stopped'}}, _content_type='application/merge-patch+json')
    co.delete_namespaced_custom_object('kubevirt.io', 'v1', namespace, 'virtualmachines', 'vm1')
    entries = [e for e in instrumented_api.write_log(mark) if e['namespace'] == namespace]
    assert [(e['method'], e['kind'], e['subresource']) for e in entries] == [
        ('POST', 'virtualmachines', None), ('PATCH', 'virtualmachines', 'status'), ('DELETE', 'virtualmachines', None)]
    assert entries[1]['resource_version'] == done['metadata']['resourceVersion']


def test_failed_and_faulted_writes_are_logged_with_their_code(instrumented_api, api_client, namespace):
    core = client.CoreV1Api(api_client)
    mark = _mark(instrumented_api)
    with pytest.raises(client.ApiException):
        core.delete_namespaced_secret('missing', namespace)
    instrumented_api.faults.set(error_rate=1.0, error_codes=(500,), methods=['POST'])
    with pytest.raises(client.ApiException):
        core.create_namespaced_secret(namespace, {'metadata': {'name': 's'}})
    instrumented_api.faults.clear()
    entries = [e for e in instrumented_api.write_log(mark) if e['namespace'] == namespace]
    assert [(e['method'], e['kind'], e['name'], e['status'], e['resource_version']) for e in entries] == [
        ('DELETE', 'secrets', 'missing', 404, None), ('POST', 'secrets', None, 500, None)]


def test_cluster_scoped_writes(instrumented_api, api_client, namespace):
    core = client.CoreV1Api(api_client)
    mark = _mark(instrumented_api)
    core.patch_namespace(namespace, {'metadata': {'labels': {'wl': 'yes'}}})
    entry = instrumented_api.write_log(mark)[-1]
    assert (entry['kind'], entry['namespace'], entry['name'], entry['subresource']) == ('namespaces', None, namespace, None)


def test_admin_endpoint(instrumented_api, api_client, namespace):
    core = client.CoreV1Api(api_client)
    mark = _mark(instrumented_api)
    core.create_namespaced_config_map(namespace, {'metadata': {'name': 'admin'}})
    code, entries = _admin(instrumented_api, 'GET', f'?since={mark}')
    assert code == 200 and [e['name'] for e in entries if e['namespace'] == namespace] == [None]
    assert all(e['seq'] > mark for e in entries)
    assert _admin(instrumented_api, 'GET', token='wrong')[0] == 401
    assert _admin(instrumented_api, 'DELETE', token='wrong')[0] == 401
    assert _admin(instrumented_api, 'GET', '?since=x')[0] == 400
    assert _admin(instrumented_api, 'DELETE')[0] == 200
    assert instrumented_api.write_log() == [] and _admin(instrumented_api, 'GET')[1] == []
    # /_admin requests themselves are never logged, and seq keeps counting after a clear.
    core.create_namespaced_config_map(namespace, {'metadata': {'name': 'after'}})
    (entry,) = instrumented_api.write_log()
    assert entry['seq'] > mark and entry['name'] is None


def test_clear_and_bound(tmp_path, kube):
    with kube.new_api(crd_paths=[], write_log_size=3) as server:  # a dedicated server of the backend under test
        api = client.CoreV1Api(config.new_client_from_config(server.write_kubeconfig(tmp_path / 'kc')))
        for pos in range(5):
            api.create_namespaced_config_map('default', {'metadata': {'name': f'c{pos}'}})
        entries = server.write_log()
        assert [e['seq'] for e in entries] == [3, 4, 5]
        server.clear_write_log()
        assert server.write_log() == []
        api.delete_namespaced_config_map('c0', 'default')
        assert [e['seq'] for e in server.write_log()] == [6]
        api.api_client.close()
