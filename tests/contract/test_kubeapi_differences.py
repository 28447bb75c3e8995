"""The known differences between the API stand-in and kube-apiserver, each shown by a test (tests/stack/kubeapi/README.md).

``real_api_only``: kube-apiserver does it, the stand-in does not; ``stand_in_only``: the other way round. On the backend a
difference does not hold for, the test runs as a strict xfail (tests/conftest.py): it must fail there, so the list stays
measured. A difference the stand-in stops having turns its test into an XPASS, which fails the run until the marker and the
README entry go.
"""
from __future__ import annotations

import time
import uuid

import pytest
from kubernetes import client, config

from tests.contract.helpers import CI, GROUP, VERSION, raw


def _until(predicate, timeout: float = 30.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


@pytest.mark.real_api_only(reason='the stand-in has one bearer token and no authorizer: no static-token users, no RBAC, no service accounts')
def test_rbac_static_token_users_and_service_account_tokens(kube, api_client, namespace, tmp_path):
    """A static-token user with no role is refused (403, RBAC's words) until a RoleBinding lets it read; a service account's
    token authenticates as the service account."""
    server = kube.require_server()
    user_api = config.new_client_from_config(server.write_kubeconfig(tmp_path / 'user', user='cloudkit-user'))
    status, body = raw(user_api, 'GET', f'/api/v1/namespaces/{namespace}/configmaps')
    assert status == 403 and body['message'] == (f'configmaps is forbidden: User "cloudkit-user" cannot list resource "configmaps" in API '
                                                 f'group "" in the namespace "{namespace}"')
    client.RbacAuthorizationV1Api(api_client).create_namespaced_role_binding(namespace, {
        'metadata': {'name': 'user-view'}, 'roleRef': {'apiGroup': 'rbac.authorization.k8s.io', 'kind': 'ClusterRole', 'name': 'view'},
        'subjects': [{'apiGroup': 'rbac.authorization.k8s.io', 'kind': 'User', 'name': 'cloudkit-user'}]})
    assert _until(lambda: raw(user_api, 'GET', f'/api/v1/namespaces/{namespace}/configmaps')[0] == 200)
    assert raw(user_api, 'POST', f'/api/v1/namespaces/{namespace}/configmaps', body={'metadata': {'name': 'no'}})[0] == 403
    review = {'apiVersion': 'authentication.k8s.io/v1', 'kind': 'SelfSubjectReview'}
    core = client.CoreV1Api(api_client)
    core.create_namespaced_service_account(namespace, {'metadata': {'name': 'jobs'}})
    token = core.create_namespaced_service_account_token('jobs', namespace, {'spec': {'expirationSeconds': 600}}).status.token
    sa_config = client.Configuration()
    sa_config.host, sa_config.ssl_ca_cert = api_client.configuration.host, api_client.configuration.ssl_ca_cert
    sa_config.api_key = {'authorization': f'Bearer {token}'}
    status, body = raw(client.ApiClient(sa_config), 'POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', body=review)
    assert status == 201 and body['status']['userInfo']['username'] == f'system:serviceaccount:{namespace}:jobs'


@pytest.mark.real_api_only(reason='the stand-in runs no controllers: no service accounts or root CA ConfigMap in new namespaces')
def test_new_namespaces_get_their_default_service_account_and_root_ca(api_client, namespace):
    core = client.CoreV1Api(api_client)
    assert _until(lambda: 'default' in [sa.metadata.name for sa in core.list_namespaced_service_account(namespace).items])
    assert _until(lambda: 'kube-root-ca.crt' in [cm.metadata.name for cm in core.list_namespaced_config_map(namespace).items])


@pytest.mark.real_api_only(reason='deletes are instant in the stand-in: a namespace and its content go in the DELETE itself')
def test_a_deleted_namespace_terminates_for_a_moment(api_client):
    """kube-controller-manager's namespace controller empties a Terminating namespace, then removes its 'kubernetes' finalizer."""
    core = client.CoreV1Api(api_client)
    name = f'ct-gone-{uuid.uuid4().hex[:8]}'
    core.create_namespace({'metadata': {'name': name}})
    assert raw(api_client, 'DELETE', f'/api/v1/namespaces/{name}')[0] == 200
    status, body = raw(api_client, 'GET', f'/api/v1/namespaces/{name}')
    assert status == 200 and body['status']['phase'] == 'Terminating' and body['spec']['finalizers'] == ['kubernetes']
    assert _until(lambda: raw(api_client, 'GET', f'/api/v1/namespaces/{name}')[0] == 404, timeout=60)


@pytest.mark.real_api_only(reason='the stand-in does not return managedFields (it records ownership for apply managers only)')
def test_managed_fields_name_every_writer(api_client, namespace):
    cis = CI(api_client, namespace)
    cis.create('mf')
    patched = cis.patch('mf', {'metadata': {'labels': {'a': 'b'}}}, field_manager='cloudkit-test')
    entries = {(e['manager'], e['operation']) for e in patched['metadata']['managedFields']}
    assert {('OpenAPI-Generator', 'Update'), ('cloudkit-test', 'Update')} <= entries


@pytest.mark.real_api_only(reason='the stand-in offers neither aggregated discovery nor OpenAPI documents')
def test_aggregated_discovery_and_openapi(api_client):
    accept = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList'
    status, body = raw(api_client, 'GET', '/apis', headers={'Accept': accept})
    assert status == 200 and body['kind'] == 'APIGroupDiscoveryList'
    assert GROUP in [item['metadata']['name'] for item in body['items']]
    status, body = raw(api_client, 'GET', '/openapi/v3')
    assert status == 200 and f'apis/{GROUP}/{VERSION}' in body['paths']


@pytest.mark.stand_in_only(reason='kube-apiserver omits kind and apiVersion in the items of a built-in kind\'s list')
def test_list_items_of_built_in_kinds_carry_kind_and_api_version(api_client, namespace):
    client.CoreV1Api(api_client).create_namespaced_config_map(namespace, {'metadata': {'name': 'k'}})
    status, body = raw(api_client, 'GET', f'/api/v1/namespaces/{namespace}/configmaps', {'fieldSelector': 'metadata.name=k'})
    assert status == 200 and body['items'][0].get('kind') == 'ConfigMap' and body['items'][0].get('apiVersion') == 'v1'
