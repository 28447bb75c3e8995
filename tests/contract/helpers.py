"""Small helpers shared by the contract tests: raw calls through the official client, object builders."""
from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.request

from kubernetes import client

GROUP = os.environ.get('CLOUDKIT_TEST_API_GROUP', 'cloudkit.openshift.io')
VERSION = 'v1alpha1'
CI_PLURAL = 'computeinstances'


def raw(api: client.ApiClient, method: str, path: str, query=None, body=None, content_type: str | None = None,
        headers: dict | None = None) -> tuple[int, dict]:
    """(status, parsed JSON body) of one request made with the client's own auth and transport."""
    hdrs = {'Accept': 'application/json'}
    if content_type:
        hdrs['Content-Type'] = content_type
    hdrs.update(headers or {})
    req = api.param_serialize(method, path, query_params=list((query or {}).items()), header_params=hdrs, body=body,
                              auth_settings=['BearerToken'])
    resp = api.call_api(*req)
    resp.read()
    text = resp.data.decode() if resp.data else ''
    return resp.status, (json.loads(text) if text.strip().startswith('{') else {'text': text})


def error_body(exc: client.ApiException) -> dict:
    """The Status object of a failed call."""
    return json.loads(exc.body)


def ci_body(name: str, group: str = GROUP, **spec) -> dict:
    """A ComputeInstance manifest."""
    spec.setdefault('templateID', 'cloudkit.templates.ocp_virt_vm')
    return {'apiVersion': f'{group}/{VERSION}', 'kind': 'ComputeInstance', 'metadata': {'name': name}, 'spec': spec}


class CI:
    """CustomObjectsApi calls for ComputeInstances in one namespace."""

    def __init__(self, api: client.ApiClient, namespace: str, group: str = GROUP):
        self.co = client.CustomObjectsApi(api)
        self.ns = namespace
        self.group = group

    def create(self, name: str, **spec) -> dict:
        """POST."""
        return self.co.create_namespaced_custom_object(self.group, VERSION, self.ns, CI_PLURAL, ci_body(name, self.group, **spec))

    def get(self, name: str) -> dict:
        """GET."""
        return self.co.get_namespaced_custom_object(self.group, VERSION, self.ns, CI_PLURAL, name)

    def replace(self, obj: dict) -> dict:
        """PUT."""
        return self.co.replace_namespaced_custom_object(self.group, VERSION, self.ns, CI_PLURAL, obj['metadata']['name'], obj)

    def replace_status(self, obj: dict) -> dict:
        """PUT .../status."""
        return self.co.replace_namespaced_custom_object_status(self.group, VERSION, self.ns, CI_PLURAL, obj['metadata']['name'], obj)

    def patch(self, name: str, body, content_type: str = 'application/merge-patch+json', **kwargs) -> dict:
        """PATCH with an explicit content type."""
        return self.co.patch_namespaced_custom_object(self.group, VERSION, self.ns, CI_PLURAL, name, body, _content_type=content_type, **kwargs)

    def patch_status(self, name: str, body, content_type: str = 'application/merge-patch+json') -> dict:
        """PATCH .../status."""
        return self.co.patch_namespaced_custom_object_status(self.group, VERSION, self.ns, CI_PLURAL, name, body, _content_type=content_type)

    def delete(self, name: str) -> dict:
        """DELETE."""
        return self.co.delete_namespaced_custom_object(self.group, VERSION, self.ns, CI_PLURAL, name)

    def list(self, **kwargs) -> dict:
        """LIST in the namespace."""
        return self.co.list_namespaced_custom_object(self.group, VERSION, self.ns, CI_PLURAL, **kwargs)


def admin_call(server, method: str, path: str, body: dict | None = None, token: str | None = None) -> tuple[int, object]:
    """(status, JSON body) of a call to the /_admin endpoints of the stand-in or of the proxy in front of kube-apiserver
    (HTTPS verified with the control plane's CA)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server.url + path, data=data, method=method,
                                 headers={'Authorization': f'Bearer {token or server.token}', 'Content-Type': 'application/json'})
    context = ssl.create_default_context(cafile=server.ca_file) if server.url.startswith('https') else None
    try:
        with urllib.request.urlopen(req, timeout=5, context=context) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
