"""Contract tests of the fulfillment stand-in (tests/stack/fulfillment.py): the compute instance templates endpoints
answer as the fulfillment service's do for publish_templates.yml (list shape, create, update, errors, token, TLS)."""
from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request

import pytest
from cryptography.hazmat.primitives import serialization

from tests.stack.fulfillment import TEMPLATES_PATH, FulfillmentServer
from tests.stack.pki import Authority

TEMPLATE = {'id': 'acme.templates.small_vm', 'title': 'Small VM', 'description': 'small',
            'parameters': [{'name': 'small_vm_cores', 'title': 'CPU cores', 'description': '', 'required': False,
                            'type': 'type.googleapis.com/google.protobuf.Int64Value',
                            'default': {'@type': 'type.googleapis.com/google.protobuf.Int64Value', 'value': 1}}]}


@pytest.fixture
def server():
    with FulfillmentServer(token='t0ken') as srv:
        yield srv


def call(srv, method, path='', body=None, token='t0ken', context=None):
    """(status, decoded body) of one request."""
    headers = {'Authorization': f'Bearer {token}'} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers['Content-Type'] = 'application/json'
    request = urllib.request.Request(srv.url + TEMPLATES_PATH + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, json.loads(response.read() or b'null')
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b'null')


def test_list_create_read_update(server):
    assert call(server, 'GET') == (200, {'items': [], 'size': 0})
    status, created = call(server, 'POST', body=TEMPLATE)
    assert status == 201 and created['id'] == TEMPLATE['id'] and 'creation_timestamp' in created['metadata']
    status, listed = call(server, 'GET')
    assert status == 200 and listed['size'] == 1 and listed['items'][0]['parameters'] == TEMPLATE['parameters']
    status, patched = call(server, 'PATCH', '/' + TEMPLATE['id'], {'id': TEMPLATE['id'], 'title': 'Tiny VM'})
    assert status == 200 and patched['title'] == 'Tiny VM' and patched['description'] == 'small', 'PATCH merges the fields given'
    assert call(server, 'GET', '/' + TEMPLATE['id'])[1]['title'] == 'Tiny VM'
    assert server.templates()[TEMPLATE['id']]['title'] == 'Tiny VM'


def test_errors(server):
    assert call(server, 'POST', body={'title': 'no id'})[0] == 400
    assert call(server, 'POST', body=TEMPLATE)[0] == 201
    assert call(server, 'POST', body=TEMPLATE)[0] == 409, 'an id exists once'
    assert call(server, 'PATCH', '/nope', {'id': 'nope'})[0] == 404
    assert call(server, 'PATCH', '/' + TEMPLATE['id'], {'id': 'other'})[0] == 400, 'the id cannot change'
    assert call(server, 'DELETE', '/' + TEMPLATE['id'])[0] == 405


def test_every_request_needs_the_token_and_is_logged(server):
    assert call(server, 'GET', token='wrong')[0] == 401
    assert call(server, 'POST', body=TEMPLATE, token=None)[0] == 401
    assert server.templates() == {}, 'an unauthorized request changes nothing'
    log = server.requests()
    assert [(r['method'], r['status'], r['authorized']) for r in log] == [('GET', 401, False), ('POST', 401, False)]
    assert log[1]['body'] == TEMPLATE and log[1]['path'] == TEMPLATES_PATH


def test_https_with_its_own_ca(tmp_path):
    authority = Authority('fulfillment-test-ca')
    key, certificate = authority.issue('fulfillment', server=True)
    (tmp_path / 'ca.crt').write_bytes(authority.cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / 'tls.crt').write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / 'tls.key').write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    with FulfillmentServer(token='t0ken', certificate=str(tmp_path / 'tls.crt'), key=str(tmp_path / 'tls.key')) as srv:
        assert srv.url.startswith('https://')
        trusted = ssl.create_default_context(cafile=str(tmp_path / 'ca.crt'))
        assert call(srv, 'GET', context=trusted) == (200, {'items': [], 'size': 0})
        with pytest.raises(urllib.error.URLError, match='CERTIFICATE_VERIFY_FAILED'):
            call(srv, 'GET', context=ssl.create_default_context())
