"""The HTTP side: routing, verbs, watch streaming, discovery, auth and fault injection (aiohttp)."""
from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import random
import secrets
import string
import time
import uuid
from collections import deque
from datetime import datetime, timezone

import yaml
from aiohttp import web

from . import patch as patching
from . import validation
from .builtin import ADMIN_USER_INFO, builtin_types, COMMON_FIELDS, quantity_bytes
from .errors import (APIError, already_exists, bad_request, conflict, go_string_slice, invalid, not_found, qualified, server_not_found,
                     status_body)
from .faults import FAULT_POLL, FaultSwitch, watch_cut_after
from .schema import CRDSchema
from .selectors import combine, parse_field_selector, parse_label_selector
from .store import Entry, ResourceType, Store, Watcher, owner_uids, to_bytes

LOG = logging.getLogger(__name__)

VERSION_INFO = {'major': '1', 'minor': '30', 'gitVersion': 'v1.30.0', 'gitCommit': '7c48c2bd72b9bf5c44d21d7338cc7bea77d0ad2a',
                'gitTreeState': 'clean', 'buildDate': '2024-04-17T17:27:03Z', 'goVersion': 'go1.22.2', 'compiler': 'gc',
                'platform': 'linux/amd64'}
NS_KEY = ('', 'namespaces')
PVC_KEY = ('', 'persistentvolumeclaims')
SC_KEY = ('storage.k8s.io', 'storageclasses')
DV_KEY = ('cdi.kubevirt.io', 'datavolumes')
CRD_KEY = ('apiextensions.k8s.io', 'customresourcedefinitions')
_GENERATE_CHARS = 'bcdfghjklmnpqrstvwxz2456789'
_JSON = 'application/json'
_MUTATING = frozenset(('POST', 'PUT', 'PATCH', 'DELETE'))


# The authenticated user's info, for the reviews that answer with it.
_USER = web.RequestKey('user', dict)


def now_rfc3339() -> str:
    """creationTimestamp / deletionTimestamp format."""
    return datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def _json_response(body, status: int = 200, headers: dict | None = None) -> web.Response:
    raw = body if isinstance(body, bytes) else to_bytes(body)
    return web.Response(body=raw, status=status, content_type=_JSON, headers=headers)


def _error_response(err: APIError) -> web.Response:
    return _json_response(err.body, err.code, err.headers)


def _without(obj: dict, keys) -> dict:
    return {k: v for k, v in obj.items() if k not in keys}


def _int_param(query, name: str) -> int:
    value = query.get(name)
    if not value:
        return 0
    try:
        return int(value)
    except ValueError as exc:
        raise bad_request(f'invalid value for {name}: {value!r}') from exc


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ('true', '1')


class KubeAPI:
    """State and handlers of one API server; all methods run on its event loop."""

    def __init__(self, token: str, history: int = 10000, bookmark_interval: float = 60.0, faults: FaultSwitch | None = None,
                 write_log_size: int = 100000):
        self.token = token
        self.store = Store(history)
        self.bookmark_interval = bookmark_interval
        self.faults = faults or FaultSwitch()
        self.closing = False
        self.writes: deque = deque(maxlen=write_log_size)
        self.write_seq = 0
        self.server_address = '127.0.0.1:0'
        for rtype in builtin_types():
            self.store.add_type(rtype)
        # What a cluster checks on updates beyond validation: admission plugins and the webhooks of its add-ons.
        self.update_admission = {PVC_KEY: self._admit_pvc_resize, DV_KEY: self._admit_datavolume_update}

    # ------------------------------------------------------------------ app
    def make_app(self) -> web.Application:
        """The aiohttp application: one catch-all route, dispatch by path segments."""
        app = web.Application(client_max_size=validation.MAX_REQUEST_BODY)
        app.router.add_route('*', '/{tail:.*}', self.handle)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_shutdown(self, _app) -> None:
        self.closing = True
        for watchers in self.store.watchers.values():
            for watcher in list(watchers):
                watcher.queue.put_nowait(None)

    def bootstrap(self) -> None:
        """The objects a fresh cluster has."""
        for name in ('default', 'kube-system', 'kube-public'):
            if not self.store.get(NS_KEY, None, name):
                self.create_object(self.store.types[NS_KEY], None, {'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': name}})
        sc_key = ('storage.k8s.io', 'storageclasses')
        if not self.store.get(sc_key, None, 'standard'):
            self.create_object(self.store.types[sc_key], None, {
                'apiVersion': 'storage.k8s.io/v1', 'kind': 'StorageClass',
                'metadata': {'name': 'standard', 'annotations': {'storageclass.kubernetes.io/is-default-class': 'true'}},
                'provisioner': 'kubevirt.io.hostpath-provisioner', 'reclaimPolicy': 'Delete', 'volumeBindingMode': 'WaitForFirstConsumer'})

    def apply_crd(self, crd: dict) -> None:
        """Create or replace a CRD from a manifest (used for files loaded at start)."""
        rtype = self.store.types[CRD_KEY]
        name = (crd.get('metadata') or {}).get('name')
        existing = self.store.get(CRD_KEY, None, name) if name else None
        body = json.loads(to_bytes(crd))
        if existing is None:
            self.create_object(rtype, None, body)
        else:
            body.setdefault('metadata', {}).pop('resourceVersion', None)
            self.update_object(rtype, existing, body, None)

    # ------------------------------------------------------------ entry point
    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Auth, faults, then dispatch; every failure becomes a Status body."""
        path = request.path
        if path in ('/healthz', '/readyz', '/livez'):
            return web.Response(text='ok')
        auth = request.headers.get('Authorization')
        if auth is None and not path.startswith('/_admin/') and not self._client_certificate(request):
            # No credentials: kube-apiserver (anonymous auth on, as in OpenShift) sees system:anonymous, whom RBAC lets read
            # /version and the health checks only.
            if path.rstrip('/') in ('/version', '/livez', '/readyz', '/healthz'):
                return await self._handle_resource(request)
            return _json_response(self._anonymous_forbidden(request), 403)
        user = self._authenticate(request, auth)
        if user is None:
            return _json_response(status_body(401, 'Unauthorized', 'Unauthorized'), 401)
        request[_USER] = user
        if path.startswith('/_admin/'):
            return await self._admin(request)
        resp = await self._handle_resource(request)
        if request.method in _MUTATING:
            self._log_write(request, resp)
        return resp

    @staticmethod
    def _client_certificate(request: web.Request) -> dict | None:
        """The verified client certificate of the connection (the TLS handshake checked it against the CA), if any."""
        transport = request.transport
        return transport.get_extra_info('peercert') if transport is not None else None

    def _authenticate(self, request: web.Request, auth: str | None) -> dict | None:
        """The user info of the request, as kube-apiserver's authenticators give it, or None (401).

        A bearer token is checked first (the stand-in's one token: an administrator in system:masters); without one, a
        client certificate gives user = CN and groups = O, as kube-apiserver's x509 authenticator does. A token that is
        wrong is a 401 even with a good certificate, since the token authenticator answers first there too.
        """
        if auth is not None:
            if auth.startswith('Bearer ') and hmac.compare_digest(auth[7:].strip().encode(), self.token.encode()):
                return {'username': ADMIN_USER_INFO['username'], 'groups': list(ADMIN_USER_INFO['groups'])}
            return None
        cert = self._client_certificate(request)
        if not cert:
            return None
        names = [attr for rdn in cert.get('subject', ()) for attr in rdn]
        common = [value for key, value in names if key == 'commonName']
        if not common:
            return None
        groups = [value for key, value in names if key == 'organizationName']
        return {'username': common[0], 'groups': groups + ['system:authenticated']}

    def _anonymous_forbidden(self, request: web.Request) -> dict:
        """kube-apiserver's RBAC 403 for system:anonymous (its message and details)."""
        user = 'User "system:anonymous"'
        segs = [seg for seg in request.path.split('/') if seg]
        if len(segs) >= 3 and segs[0] == 'api':
            group, rest = '', segs[2:]
        elif len(segs) >= 4 and segs[0] == 'apis':
            group, rest = segs[1], segs[3:]
        else:
            return status_body(403, f'forbidden: {user} cannot {request.method.lower()} path "{request.path}"', 'Forbidden', {})
        watching = rest[0] == 'watch'
        rest = rest[1:] if watching else rest
        plural, namespace, name, sub = self._write_target('/'.join([''] + segs[:2 if segs[0] == 'api' else 3] + rest))
        if plural is None:
            plural, namespace, name, sub = rest[0], None, None, None
        method = request.method
        if method == 'GET':
            verb = 'get' if name else ('watch' if watching or _truthy(request.query.get('watch')) else 'list')
        else:
            verb = {'POST': 'create', 'PUT': 'update', 'PATCH': 'patch'}.get(method) or ('delete' if name else 'deletecollection')
        resource = f'{plural}/{sub}' if sub else plural
        scope = f'in the namespace "{namespace}"' if namespace else 'at the cluster scope'
        target = f'{qualified(plural, group)} "{name}"' if name else qualified(plural, group)
        details = {'name': name} if name else {}
        if group:
            details['group'] = group
        details['kind'] = plural
        return status_body(403, f'{target} is forbidden: {user} cannot {verb} resource "{resource}" in API group "{group}" {scope}',
                           'Forbidden', details)

    async def _handle_resource(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        cfg = self.faults.config
        if cfg.latency > 0 and self.faults.applies(request.method, path):
            await asyncio.sleep(cfg.latency)
        fault = self.faults.pick_error(request.method, path)
        if fault is not None:
            code, body, headers = fault
            return _json_response(body, code, headers)
        try:
            return await self._dispatch(request)
        except APIError as err:
            return _error_response(err)
        except web.HTTPRequestEntityTooLarge:
            return _json_response(status_body(413, f'Request entity too large: limit is {validation.MAX_REQUEST_BODY}', 'RequestEntityTooLarge'),
                                  413)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:  # a bug here must still answer like an API server, and be visible in the log
            LOG.exception('internal error on %s %s', request.method, path)
            return _json_response(status_body(500, f'Internal error occurred: {exc}', 'InternalError', {}), 500)

    # ------------------------------------------------------------ write log
    def _log_write(self, request: web.Request, resp: web.StreamResponse) -> None:
        """Append one handled mutating request to the bounded write log (faulted and failed ones too: see ``status``)."""
        target = self._write_target(request.path)
        rv = None
        body = getattr(resp, 'body', None)
        if isinstance(body, bytes) and 200 <= resp.status < 300:
            try:
                meta = json.loads(body).get('metadata') or {}
            except (ValueError, AttributeError):
                meta = {}
            # A Status answer (a delete that does not return the object) has no resourceVersion; a deletecollection reports the list's.
            rv = meta.get('resourceVersion')
        self.write_seq += 1
        self.writes.append({
            'seq': self.write_seq, 'time': time.time(), 'monotonic': time.monotonic(), 'method': request.method, 'path': request.path,
            'query': dict(request.query), 'status': resp.status, 'user_agent': request.headers.get('User-Agent'),
            'kind': target[0], 'namespace': target[1], 'name': target[2], 'subresource': target[3], 'resource_version': rv})

    def _write_target(self, path: str) -> tuple:
        """(plural, namespace, name, subresource) of a resource path, parsed the way ``_resource_request`` routes it."""
        segs = [seg for seg in path.split('/') if seg]
        if len(segs) >= 3 and segs[0] == 'api':
            group, version, rest = '', segs[1], segs[2:]
        elif len(segs) >= 4 and segs[0] == 'apis':
            group, version, rest = segs[1], segs[2], segs[3:]
        else:
            return None, None, None, None
        nested = self.store.find_type(group, version, rest[2]) if len(rest) >= 3 and rest[0] == 'namespaces' else None
        if nested is not None and nested.namespaced:
            rest = rest[1:] + [None] * 4
            return rest[1], rest[0], rest[2], rest[3]
        rest = list(rest) + [None] * 3
        return rest[0], None, rest[1], rest[2]

    def write_log(self, since_seq: int = 0) -> list[dict]:
        """Copies of the logged writes with ``seq > since_seq``, oldest first."""
        return [dict(e) for e in self.writes if e['seq'] > since_seq]

    def clear_write_log(self) -> None:
        """Forget every logged write; ``seq`` keeps counting so that ``since`` cursors stay valid."""
        self.writes.clear()

    async def _admin(self, request: web.Request) -> web.Response:
        if request.path.rstrip('/') == '/_admin/writes':
            return self._admin_writes(request)
        if request.path.rstrip('/') != '/_admin/faults':
            return _error_response(server_not_found())
        if request.method == 'GET':
            return _json_response(self.faults.config.as_dict())
        if request.method == 'DELETE':
            self.faults.clear()
            return _json_response(self.faults.config.as_dict())
        if request.method in ('PUT', 'POST'):
            try:
                params = json.loads(await request.read() or b'{}')
                cfg = self.faults.set(**{k: v for k, v in params.items() if v is not None or k == 'cut_watches_after'})
            except (ValueError, TypeError) as exc:
                return _error_response(bad_request(str(exc)))
            return _json_response(cfg.as_dict())
        return _error_response(APIError(405, 'the server does not allow this method on the requested resource', details={}))

    def _admin_writes(self, request: web.Request) -> web.Response:
        if request.method == 'GET':
            try:
                since = int(request.query.get('since') or 0)
            except ValueError:
                return _error_response(bad_request(f'invalid value for since: {request.query.get("since")!r}'))
            return _json_response(self.write_log(since))
        if request.method == 'DELETE':
            self.clear_write_log()
            return _json_response({'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Success'})
        return _error_response(APIError(405, 'the server does not allow this method on the requested resource', details={}))

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == '/version' or path == '/version/':
            return _json_response(VERSION_INFO)
        segs = [s for s in path.split('/') if s]
        if not segs or segs[0] not in ('api', 'apis'):
            raise server_not_found()
        if segs[0] == 'api':
            if len(segs) == 1:
                return self._discovery_response(request, {'kind': 'APIVersions', 'versions': ['v1'],
                                                          'serverAddressByClientCIDRs': [{'clientCIDR': '0.0.0.0/0',
                                                                                          'serverAddress': self.server_address}]})
            group, version, rest = '', segs[1], segs[2:]
        else:
            if len(segs) == 1:
                return self._discovery_response(request, self._group_list())
            if len(segs) == 2:
                group_doc = self._group(segs[1])
                if group_doc is None:
                    raise server_not_found()
                return self._discovery_response(request, group_doc)
            group, version, rest = segs[1], segs[2], segs[3:]
        if not rest:
            return self._discovery_response(request, self._resource_list(group, version))
        force_watch = False
        if rest[0] == 'watch':
            force_watch, rest = True, rest[1:]
        return await self._resource_request(request, group, version, rest, force_watch)

    # ------------------------------------------------------------- discovery
    def _discovery_response(self, request: web.Request, doc: dict) -> web.Response:
        # Aggregated discovery (as=APIGroupDiscoveryList) is not offered: clients that also accept plain
        # application/json fall back to the legacy documents; clients that accept nothing else get 406.
        accept = request.headers.get('Accept', '')
        if accept:
            kinds = [a.strip() for a in accept.split(',')]
            plain = any(a.split(';')[0].strip() in ('application/json', '*/*', 'application/*') and 'as=' not in a for a in kinds)
            if not plain:
                raise APIError(406, 'only the following media types are accepted: application/json', 'NotAcceptable', {})
        return _json_response(doc)

    def _group_doc(self, group: str, versions: list) -> dict:
        gvs = [{'groupVersion': f'{group}/{v}', 'version': v} for v in versions]
        return {'name': group, 'versions': gvs, 'preferredVersion': gvs[0]}

    def _group_list(self) -> dict:
        groups = [self._group_doc(g, vs) for g, vs in sorted(self.store.group_versions().items())]
        return {'kind': 'APIGroupList', 'apiVersion': 'v1', 'groups': groups}

    def _group(self, group: str) -> dict | None:
        versions = self.store.group_versions().get(group)
        if not versions:
            return None
        return dict({'kind': 'APIGroup', 'apiVersion': 'v1'}, **self._group_doc(group, versions))

    def _resource_list(self, group: str, version: str) -> dict:
        resources = []
        for rtype in sorted(self.store.types.values(), key=lambda t: t.plural):
            if rtype.group == group and rtype.version == version:
                resources.extend(rtype.discovery())
        if not resources:
            raise server_not_found()
        return {'kind': 'APIResourceList', 'apiVersion': 'v1', 'groupVersion': f'{group}/{version}' if group else version,
                'resources': resources}

    # ------------------------------------------------------------- routing
    async def _resource_request(self, request: web.Request, group: str, version: str, rest: list, force_watch: bool):
        namespace = name = sub = None
        nested = self.store.find_type(group, version, rest[2]) if len(rest) >= 3 and rest[0] == 'namespaces' else None
        if nested is not None and nested.namespaced:
            if len(rest) > 5:
                raise server_not_found()
            namespace, plural = rest[1], rest[2]
            name = rest[3] if len(rest) > 3 else None
            sub = rest[4] if len(rest) > 4 else None
        else:
            if len(rest) > 3:
                raise server_not_found()
            plural = rest[0]
            name = rest[1] if len(rest) > 1 else None
            sub = rest[2] if len(rest) > 2 else None
        rtype = self.store.find_type(group, version, plural)
        if rtype is None or (namespace is not None and not rtype.namespaced):
            raise server_not_found()
        if rtype.namespaced and namespace is None and name is not None:
            raise server_not_found()
        if sub is not None and not (sub == 'status' and rtype.status_subresource):
            raise server_not_found()
        method = request.method
        query = request.query
        if rtype.review is not None:
            if method != 'POST' or name is not None or namespace is not None:
                raise APIError(405, 'the server does not allow this method on the requested resource', 'MethodNotAllowed', {})
            return _json_response(rtype.review(await self._read_object(request, rtype), request[_USER]), 201)
        if force_watch and not (method == 'GET' and name is None):
            raise server_not_found()
        if method == 'GET':
            if name is not None:
                entry = self._must_get(rtype, namespace, name)
                return _json_response(entry.raw)
            if force_watch or _truthy(query.get('watch')):
                return await self._watch(request, rtype, namespace)
            return self._list(rtype, namespace, query)
        if name is None:
            if rtype.namespaced and namespace is None and method in ('POST', 'DELETE'):
                # The all-namespaces path only lists and watches.
                raise APIError(405, 'the server does not allow this method on the requested resource', details={})
            if method == 'POST':
                body = await self._read_object(request, rtype)
                entry = self.create_object(rtype, namespace, body, dry_run=self._dry_run(query))
                return _json_response(entry.raw, 201)
            if method == 'DELETE':
                return self._delete_collection(rtype, namespace, query)
            raise APIError(405, 'the server does not allow this method on the requested resource', details={})
        if method == 'PUT':
            return await self._replace(request, rtype, namespace, name, sub)
        if method == 'PATCH':
            return await self._patch(request, rtype, namespace, name, sub)
        if method == 'DELETE' and sub is None:
            return await self._delete(request, rtype, namespace, name)
        raise APIError(405, 'the server does not allow this method on the requested resource', details={})

    @staticmethod
    def _dry_run(query) -> bool:
        return 'All' in query.getall('dryRun', [])

    def _must_get(self, rtype: ResourceType, namespace: str | None, name: str) -> Entry:
        entry = self.store.get(rtype.key, namespace, name)
        if entry is None:
            raise not_found(rtype.plural, rtype.group, name)
        return entry

    async def _read_object(self, request: web.Request, rtype: ResourceType) -> dict:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError as exc:
            raise bad_request(f'the object provided is unrecognized (must be of type {rtype.kind}): couldn\'t get version/kind; '
                              f'json parse error: {exc}') from exc
        return self._check_body_type(rtype, body, raw)

    @staticmethod
    def _check_body_type(rtype: ResourceType, body, raw: bytes = b'') -> dict:
        if not isinstance(body, dict):
            raise bad_request(f'the object provided is unrecognized (must be of type {rtype.kind}): couldn\'t get version/kind; '
                              'json parse error: expected an object')
        if rtype.schema is not None and not body.get('kind'):
            raise bad_request(f"Object 'Kind' is missing in '{raw.decode(errors='replace')[:1000]}'")
        if body.get('apiVersion') and body['apiVersion'] != rtype.api_version:
            raise bad_request(f'the API version in the data ({body["apiVersion"]}) does not match the expected API version ({rtype.api_version})')
        if body.get('kind') and body['kind'] != rtype.kind:
            raise bad_request(f'the kind in the data ({body["kind"]}) does not match the expected kind ({rtype.kind})')
        if not isinstance(body.get('metadata', {}), dict):
            raise bad_request('metadata must be an object')
        return body

    # ---------------------------------------------------------------- list
    def _predicate(self, rtype: ResourceType, query):
        fields = rtype.field_selectors or COMMON_FIELDS
        return combine(parse_label_selector(query.get('labelSelector')),
                       parse_field_selector(query.get('fieldSelector'), fields, metadata_only=rtype.schema is None and fields == COMMON_FIELDS))

    def _list(self, rtype: ResourceType, namespace: str | None, query) -> web.Response:
        pred = self._predicate(rtype, query)
        entries = self.store.sorted_entries(rtype.key, namespace)
        token = query.get('continue')
        if token:
            try:
                start = tuple(json.loads(base64.urlsafe_b64decode(token.encode()))['start'].split('/', 1))
            except (ValueError, KeyError, TypeError) as exc:
                raise bad_request(f'continue key is not valid: {exc}') from exc
            entries = [e for e in entries if (e.obj['metadata'].get('namespace', ''), e.obj['metadata']['name']) > start]
        if pred is not None:
            entries = [e for e in entries if pred(e.obj)]
        meta = {'resourceVersion': str(self.store.rv)}
        limit = _int_param(query, 'limit')
        if 0 < limit < len(entries):
            last = entries[limit - 1].obj['metadata']
            cont = {'v': 'meta.k8s.io/v1', 'rv': self.store.rv, 'start': f'{last.get("namespace", "")}/{last["name"]}'}
            meta['continue'] = base64.urlsafe_b64encode(to_bytes(cont)).decode()
            meta['remainingItemCount'] = len(entries) - limit
            entries = entries[:limit]
        body = (b'{"kind":"' + rtype.kind.encode() + b'List","apiVersion":"' + rtype.api_version.encode() + b'","metadata":'
                + to_bytes(meta) + b',"items":[' + b','.join(e.raw for e in entries) + b']}')
        return _json_response(body)

    # -------------------------------------------------------------- create
    def _check_namespace(self, rtype: ResourceType, namespace: str, name: str) -> None:
        ns_entry = self.store.get(NS_KEY, None, namespace)
        if ns_entry is None:
            raise not_found('namespaces', '', namespace)
        if ns_entry.obj['metadata'].get('deletionTimestamp'):
            msg = f'unable to create new content in namespace {namespace} because it is being terminated'
            raise APIError(403, f'{qualified(rtype.plural, rtype.group)} "{name}" is forbidden: {msg}', 'Forbidden',
                           {'name': name, 'kind': rtype.plural,
                            'causes': [{'reason': 'NamespaceTerminating', 'message': msg, 'field': 'metadata.namespace'}]})

    @staticmethod
    def _validate_meta(rtype: ResourceType, meta: dict, generate_name: str | None = None) -> None:
        """ValidateObjectMeta: the name (and generateName) per kind, labels and annotations (400 when not string maps, else 422)."""
        for field in ('labels', 'annotations'):
            value = meta.get(field)
            if value is None:
                continue
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise bad_request(f'json: cannot unmarshal into Go struct field ObjectMeta.metadata.{field} of type map[string]string')
        if rtype.key == NS_KEY:
            name_validator = validation.is_dns1123_label
        elif rtype.key == ('', 'services'):
            name_validator = validation.is_dns1035_label
        else:
            name_validator = validation.is_dns1123_subdomain
        causes = validation.name_causes(name_validator, meta.get('name') or '', generate_name)
        causes += validation.label_causes(meta.get('labels') or {})
        causes += validation.annotation_causes(meta.get('annotations') or {})
        if causes:
            raise invalid(rtype.kind, rtype.group, meta.get('name') or '', causes)

    def create_object(self, rtype: ResourceType, namespace: str | None, obj: dict, dry_run: bool = False, owners: dict | None = None) -> Entry:
        """POST semantics; ``obj`` is owned by the callee from now on."""
        meta = dict(obj.get('metadata') or {})
        if rtype.namespaced:
            if meta.get('namespace') and namespace and meta['namespace'] != namespace:
                raise bad_request('the namespace of the provided object does not match the namespace sent on the request')
            namespace = namespace or meta.get('namespace')
            if not namespace:
                raise bad_request('the namespace of the object must be set')
            meta['namespace'] = namespace
        else:
            meta.pop('namespace', None)
        name = meta.get('name')
        if not name:
            prefix = meta.get('generateName')
            if not prefix:
                raise invalid(rtype.kind, rtype.group, '', [{'reason': 'FieldValueRequired', 'message': 'Required value: name or generateName is required',
                                                             'field': 'metadata.name'}])
            # kube-apiserver's SimpleNameGenerator: at most 58 characters of the prefix, then 5 random ones.
            base = prefix[:validation.MAX_GENERATED_PREFIX]
            name = base + ''.join(random.choice(_GENERATE_CHARS) for _pos in range(validation.GENERATED_SUFFIX))
            while self.store.get(rtype.key, namespace, name) is not None:
                name = base + ''.join(random.choice(_GENERATE_CHARS) for _pos in range(validation.GENERATED_SUFFIX))
            meta['name'] = name
        self._validate_meta(rtype, meta, meta.get('generateName'))
        if rtype.namespaced:
            self._check_namespace(rtype, namespace, name)
        if meta.get('resourceVersion'):
            raise APIError(500, 'resourceVersion should not be set on objects to be created', 'InternalError',
                           {'causes': [{'message': 'resourceVersion should not be set on objects to be created'}]})
        if self.store.get(rtype.key, namespace, name) is not None:
            raise already_exists(rtype.plural, rtype.group, name)
        for key in ('uid', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'managedFields', 'selfLink', 'generation'):
            meta.pop(key, None)
        meta['uid'] = str(uuid.uuid4())
        meta['creationTimestamp'] = now_rfc3339()
        if rtype.has_generation:
            meta['generation'] = 1
        new = {'apiVersion': rtype.api_version, 'kind': rtype.kind, 'metadata': meta}
        new.update(_without(obj, ('apiVersion', 'kind', 'metadata')))
        if rtype.status_subresource:
            new.pop('status', None)
        new = self._normalize(rtype, new, None, skip_status=rtype.status_subresource)
        if dry_run:
            return Entry(new)
        meta['resourceVersion'] = str(self.store.next_rv())
        entry = Entry(new, owners)
        self.store.put(rtype.key, entry, 'ADDED')
        self._after_write(rtype, new)
        return entry

    def _normalize(self, rtype: ResourceType, new: dict, old: dict | None, only_status: bool = False, skip_status: bool = False) -> dict:
        if rtype.normalize is not None:
            rtype.normalize(new, old)
        if rtype.schema is not None:
            new = rtype.schema.prune_and_default(new)
            causes = rtype.schema.validate(new, only_status=only_status, skip_status=skip_status)
            if causes:
                raise invalid(rtype.kind, rtype.group, new['metadata']['name'], causes)
        if rtype.key == CRD_KEY:
            self._crd_type(new)
        if rtype.schema is not None and len(to_bytes(new)) > validation.MAX_ETCD_REQUEST:
            # Custom resources are stored as JSON; etcd refuses a request over its 1.5 MiB limit.
            raise APIError(500, 'etcdserver: request is too large', 'InternalError')
        return new

    # -------------------------------------------------------------- update
    async def _replace(self, request: web.Request, rtype: ResourceType, namespace: str | None, name: str, sub: str | None):
        body = await self._read_object(request, rtype)
        meta = body.get('metadata') or {}
        if meta.get('name') and meta['name'] != name:
            raise bad_request(f'the name of the object ({meta["name"]}) does not match the name on the URL ({name})')
        if rtype.namespaced and meta.get('namespace') and meta['namespace'] != namespace:
            raise bad_request('the namespace of the provided object does not match the namespace sent on the request')
        entry = self._must_get(rtype, namespace, name)
        result = self.update_object(rtype, entry, body, sub, dry_run=self._dry_run(request.query))
        return _json_response(result.raw)

    def update_object(self, rtype: ResourceType, entry: Entry, cand: dict, sub: str | None, dry_run: bool = False,
                      owners: dict | None = None) -> Entry:
        """PUT semantics for the main resource or the status subresource; no-op writes keep the resourceVersion."""
        old = entry.obj
        old_meta = old['metadata']
        name = old_meta['name']
        cmeta = dict(cand.get('metadata') or {})
        if cmeta.get('resourceVersion') and cmeta['resourceVersion'] != old_meta['resourceVersion']:
            raise conflict(rtype.plural, rtype.group, name)
        if cmeta.get('uid') and cmeta['uid'] != old_meta['uid']:
            raise conflict(rtype.plural, rtype.group, name,
                           f'Precondition failed: UID in precondition: {cmeta["uid"]}, UID in object meta: {old_meta["uid"]}')
        if sub == 'status':
            new = json.loads(entry.raw)
            if 'status' in cand:
                new['status'] = cand['status']
            else:
                new.pop('status', None)
            new = self._normalize(rtype, new, old, only_status=True)
        else:
            for key in ('name', 'namespace', 'uid', 'creationTimestamp', 'generation', 'deletionTimestamp', 'deletionGracePeriodSeconds'):
                if key in old_meta:
                    cmeta[key] = old_meta[key]
                else:
                    cmeta.pop(key, None)
            cmeta.pop('managedFields', None)
            cmeta.pop('selfLink', None)
            self._validate_meta(rtype, cmeta)
            new = {'apiVersion': rtype.api_version, 'kind': rtype.kind, 'metadata': cmeta}
            new.update(_without(cand, ('apiVersion', 'kind', 'metadata')))
            if rtype.status_subresource:
                new.pop('status', None)
                if 'status' in old:
                    new['status'] = json.loads(to_bytes(old['status']))
            new = self._normalize(rtype, new, old, skip_status=rtype.status_subresource)
            admit = self.update_admission.get(rtype.key)
            if admit is not None:
                admit(rtype, new, old)
        new_meta = new['metadata']
        new_meta['resourceVersion'] = old_meta['resourceVersion']
        if old_meta.get('deletionTimestamp'):
            added = [f for f in new_meta.get('finalizers') or [] if f not in (old_meta.get('finalizers') or [])]
            if added:
                raise invalid(rtype.kind, rtype.group, name, [{
                    'reason': 'FieldValueForbidden', 'field': 'metadata.finalizers',
                    'message': f'Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {go_string_slice(added)}'}])
        if new == old:
            return entry
        if rtype.has_generation:
            ignore = ('metadata', 'status') if rtype.status_subresource else ('metadata',)
            if _without(new, ignore) != _without(old, ignore):
                new_meta['generation'] = int(old_meta.get('generation') or 0) + 1
        if dry_run:
            return Entry(new)
        new_meta['resourceVersion'] = str(self.store.next_rv())
        new_entry = Entry(new, entry.owners if owners is None else owners)
        if new_meta.get('deletionTimestamp') and not new_meta.get('finalizers'):
            # Like kube-apiserver: the write that empties the finalizers deletes the stored object instead of updating it, so
            # watchers get DELETED with the last stored state (finalizers still in it) at the new resourceVersion; the writer
            # gets its own result.
            last = json.loads(entry.raw)
            last['metadata']['resourceVersion'] = new_meta['resourceVersion']
            self.store.remove(rtype.key, Entry(last, entry.owners))
            self._after_remove(rtype, last)
            return new_entry
        self.store.put(rtype.key, new_entry, 'MODIFIED', old)
        self._after_write(rtype, new)
        return new_entry

    def _admit_pvc_resize(self, rtype: ResourceType, new: dict, old: dict) -> None:
        """kube-apiserver's PersistentVolumeClaimResize admission: a claim grows only if its StorageClass allows expansion."""
        def requested(obj):
            return quantity_bytes((((obj.get('spec') or {}).get('resources') or {}).get('requests') or {}).get('storage'))
        before, after = requested(old), requested(new)
        if before is None or after is None or after <= before:
            return
        class_name = (new.get('spec') or {}).get('storageClassName')
        storage_class = self.store.get(SC_KEY, None, class_name) if class_name else None
        if storage_class is None or storage_class.obj.get('allowVolumeExpansion') is not True:
            raise APIError(403, f'{qualified(rtype.plural, rtype.group)} "{new["metadata"]["name"]}" is forbidden: only dynamically provisioned '
                                'pvc can be resized and the storageclass that provisions the pvc must support resize', 'Forbidden',
                           {'name': new['metadata']['name'], 'kind': rtype.plural})

    @staticmethod
    def _admit_datavolume_update(_rtype: ResourceType, new: dict, old: dict) -> None:
        """CDI's validating webhook (datavolume-validate.cdi.kubevirt.io): a DataVolume's spec never changes after creation."""
        if (new.get('spec') or {}) != (old.get('spec') or {}):
            cause = {'type': 'FieldValueDuplicate', 'message': 'Cannot update DataVolume Spec', 'field': 'DataVolume.Spec'}
            raise APIError(422, 'admission webhook "datavolume-validate.cdi.kubevirt.io" denied the request:  Cannot update DataVolume Spec',
                           'Invalid', {'causes': [cause]})

    # --------------------------------------------------------------- patch
    async def _patch(self, request: web.Request, rtype: ResourceType, namespace: str | None, name: str, sub: str | None):
        ctype = request.content_type
        query = request.query
        raw = await request.read()
        dry_run = self._dry_run(query)
        if ctype == 'application/apply-patch+yaml':
            return self._apply(rtype, namespace, name, sub, raw, query, dry_run)
        if 'force' in query:
            raise invalid('PatchOptions', 'meta.k8s.io', '', [{'reason': 'FieldValueForbidden', 'field': 'force',
                                                               'message': 'Forbidden: may not be specified for non-apply patch'}])
        accepted = ['application/json-patch+json', 'application/merge-patch+json']
        if rtype.strategic_merge:
            accepted.append('application/strategic-merge-patch+json')
        accepted.append('application/apply-patch+yaml')
        if ctype not in accepted:
            raise APIError(415, 'the body of the request was in an unknown format - accepted media types include: ' + ', '.join(accepted),
                           'UnsupportedMediaType', {})
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            raise bad_request(f'error decoding patch: {exc}') from exc
        entry = self._must_get(rtype, namespace, name)
        current = json.loads(entry.raw)
        if ctype == 'application/json-patch+json':
            new = patching.json_patch(current, doc)
        elif ctype == 'application/merge-patch+json':
            if not isinstance(doc, dict):
                raise bad_request('error decoding patch: a merge patch must be a JSON object')
            new = patching.json_merge(current, doc)
        else:
            if not isinstance(doc, dict):
                raise bad_request('error decoding patch: a strategic merge patch must be a JSON object')
            new = patching.strategic_merge(current, doc)
        if not isinstance(new, dict):
            raise bad_request('the patch did not produce an object')
        # A patch may carry metadata.resourceVersion as a precondition; a stale one is a 409 Conflict (update_object).
        result = self.update_object(rtype, entry, self._check_body_type(rtype, new), sub, dry_run)
        return _json_response(result.raw)

    def _apply(self, rtype: ResourceType, namespace: str | None, name: str, sub: str | None, raw: bytes, query, dry_run: bool):
        manager = query.get('fieldManager')
        if not manager:
            # kube-apiserver's ValidatePatchOptions: a 422 on PatchOptions, not a 400.
            raise invalid('PatchOptions', 'meta.k8s.io', '', [{'reason': 'FieldValueRequired', 'field': 'fieldManager',
                                                               'message': 'Required value: is required for apply patch'}])
        force = _truthy(query.get('force'))
        try:
            applied = yaml.load(raw, Loader=getattr(yaml, 'CSafeLoader', yaml.SafeLoader))
        except yaml.YAMLError as exc:
            raise bad_request(f'error decoding YAML: {exc}') from exc
        if not isinstance(applied, dict):
            raise bad_request('error decoding YAML: the applied configuration must be an object')
        if not applied.get('apiVersion') or not applied.get('kind'):
            raise bad_request('invalid object type: /, Kind=' if not applied.get('kind') else 'apiVersion must be set')
        self._check_body_type(rtype, applied)
        ameta = applied.setdefault('metadata', {})
        if ameta.get('name') and ameta['name'] != name:
            raise bad_request(f'the name of the object ({ameta["name"]}) does not match the name on the URL ({name})')
        entry = self.store.get(rtype.key, namespace, name)
        if entry is None:
            if sub == 'status':
                raise not_found(rtype.plural, rtype.group, name)
            ameta['name'] = name
            if rtype.namespaced:
                ameta.setdefault('namespace', namespace)
            owners = {manager: set(patching.applied_paths(applied))}
            result = self.create_object(rtype, namespace, applied, dry_run, owners)
            return _json_response(result.raw, 201)
        if ameta.get('resourceVersion') and ameta['resourceVersion'] != entry.obj['metadata']['resourceVersion']:
            raise conflict(rtype.plural, rtype.group, name)

        def apply_conflict(text):
            return conflict(rtype.plural, rtype.group, name, text)
        merged, owners = patching.server_side_apply(json.loads(entry.raw), applied, manager, entry.owners, force, apply_conflict)
        result = self.update_object(rtype, entry, merged, sub, dry_run, owners)
        if result is entry and not dry_run and owners != entry.owners:
            entry.owners = owners
        return _json_response(result.raw)

    # -------------------------------------------------------------- delete
    async def _delete(self, request: web.Request, rtype: ResourceType, namespace: str | None, name: str):
        raw = await request.read()
        try:
            opts = json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            raise bad_request(f'error decoding DeleteOptions: {exc}') from exc
        entry = self._must_get(rtype, namespace, name)
        meta = entry.obj['metadata']
        pre = (opts or {}).get('preconditions') or {}
        if pre.get('uid') and pre['uid'] != meta['uid']:
            raise conflict(rtype.plural, rtype.group, name,
                           f'Precondition failed: UID in precondition: {pre["uid"]}, UID in object meta: {meta["uid"]}')
        if pre.get('resourceVersion') and pre['resourceVersion'] != meta['resourceVersion']:
            raise conflict(rtype.plural, rtype.group, name, f'Precondition failed: ResourceVersion in precondition: '
                                                            f'{pre["resourceVersion"]}, ResourceVersion in object meta: {meta["resourceVersion"]}')
        result, gone = self.delete_object(rtype, entry, self._dry_run(request.query))
        if gone and not rtype.returns_deleted_object:
            details = {'name': name}
            if rtype.group:
                details['group'] = rtype.group
            details.update({'kind': rtype.plural, 'uid': meta['uid']})
            return _json_response({'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Success', 'details': details})
        return _json_response(result.raw)

    def delete_object(self, rtype: ResourceType, entry: Entry, dry_run: bool = False) -> tuple[Entry, bool]:
        """Delete now, or mark for deletion when finalizers (or, for a namespace, its content) hold it. Returns (state, gone)."""
        old = entry.obj
        meta = old['metadata']
        if meta.get('deletionTimestamp'):
            return entry, False
        if dry_run:
            return entry, not meta.get('finalizers') and rtype.key != NS_KEY
        if meta.get('finalizers') or rtype.key == NS_KEY:
            new = json.loads(entry.raw)
            new['metadata']['deletionTimestamp'] = now_rfc3339()
            new['metadata']['deletionGracePeriodSeconds'] = 0
            if rtype.key == NS_KEY:
                new['status'] = {'phase': 'Terminating'}
            new['metadata']['resourceVersion'] = str(self.store.next_rv())
            marked = Entry(new, entry.owners)
            self.store.put(rtype.key, marked, 'MODIFIED', old)
            if rtype.key == NS_KEY:
                self._drain_namespace(meta['name'])
                return marked, self._maybe_finish_namespace(meta['name'])
            return marked, False
        new = json.loads(entry.raw)
        new['metadata']['resourceVersion'] = str(self.store.next_rv())
        last = Entry(new, entry.owners)
        self.store.remove(rtype.key, last)
        self._after_remove(rtype, new)
        return last, True

    def _delete_collection(self, rtype: ResourceType, namespace: str | None, query) -> web.Response:
        pred = self._predicate(rtype, query)
        entries = [e for e in self.store.sorted_entries(rtype.key, namespace) if pred is None or pred(e.obj)]
        dry_run = self._dry_run(query)
        items = [self.delete_object(rtype, e, dry_run)[0].raw for e in entries]
        body = (b'{"kind":"' + rtype.kind.encode() + b'List","apiVersion":"' + rtype.api_version.encode() + b'","metadata":{"resourceVersion":"'
                + str(self.store.rv).encode() + b'"},"items":[' + b','.join(items) + b']}')
        return _json_response(body)

    # ----------------------------------------------- side effects of writes
    def _drain_namespace(self, namespace: str) -> None:
        for rtype in list(self.store.types.values()):
            if rtype.namespaced:
                for entry in self.store.sorted_entries(rtype.key, namespace):
                    self.delete_object(rtype, entry)

    def _maybe_finish_namespace(self, namespace: str) -> bool:
        """A terminating namespace goes away once nothing is left in it (the namespace controller's job)."""
        entry = self.store.get(NS_KEY, None, namespace)
        if entry is None or not entry.obj['metadata'].get('deletionTimestamp'):
            return False
        if self.store.namespace_counts[namespace] > 0:
            return False
        new = json.loads(entry.raw)
        new['spec'] = {}
        new['metadata']['resourceVersion'] = str(self.store.next_rv())
        self.store.remove(NS_KEY, Entry(new))
        return True

    def _after_remove(self, rtype: ResourceType, obj: dict) -> None:
        self._collect_dependents(obj['metadata'].get('uid'))
        if rtype.key == CRD_KEY:
            names = obj['spec']['names']
            self.store.remove_type((obj['spec']['group'], names['plural']))
        elif rtype.namespaced:
            self._maybe_finish_namespace(obj['metadata']['namespace'])

    def _collect_dependents(self, owner_uid: str | None) -> None:
        """The garbage collector's background cascade: an object whose owners (ownerReferences) are all gone is deleted,
        honouring its finalizers. (Real GC does this shortly after; here it happens as the owner goes.)"""
        for tkey, (namespace, name) in sorted(self.store.dependents.get(owner_uid or '', ())):
            entry = self.store.get(tkey, namespace or None, name)
            rtype = self.store.types.get(tkey)
            if entry is None or rtype is None or any(uid in self.store.uids for uid in owner_uids(entry.obj['metadata'])):
                continue
            self.delete_object(rtype, entry)

    def _after_write(self, rtype: ResourceType, obj: dict) -> None:
        if rtype.key == CRD_KEY:
            self.store.add_type(self._crd_type(obj))

    @staticmethod
    def _crd_type(crd: dict) -> ResourceType:
        """The served type a CRD object defines (its storage version); raises 422 for an unusable CRD."""
        name = crd['metadata']['name']
        spec = crd.get('spec') or {}
        names = spec.get('names') or {}
        versions = [v for v in spec.get('versions') or [] if v.get('served', True)]
        causes = []
        for field in ('group', 'scope'):
            if not spec.get(field):
                causes.append({'reason': 'FieldValueRequired', 'message': 'Required value', 'field': f'spec.{field}'})
        for field in ('plural', 'kind'):
            if not names.get(field):
                causes.append({'reason': 'FieldValueRequired', 'message': 'Required value', 'field': f'spec.names.{field}'})
        if not versions:
            causes.append({'reason': 'FieldValueRequired', 'message': 'Required value: must have exactly one version marked as storage version',
                           'field': 'spec.versions'})
        if not causes and name != f'{names["plural"]}.{spec["group"]}':
            causes.append({'reason': 'FieldValueInvalid', 'field': 'metadata.name',
                           'message': f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group'})
        if causes:
            raise invalid('CustomResourceDefinition', 'apiextensions.k8s.io', name, causes)
        version = next((v for v in versions if v.get('storage')), versions[0])
        try:
            schema = CRDSchema((version.get('schema') or {}).get('openAPIV3Schema'))
        except Exception as exc:  # jsonschema raises several types for a malformed schema
            raise invalid('CustomResourceDefinition', 'apiextensions.k8s.io', name, [{
                'reason': 'FieldValueInvalid', 'field': 'spec.versions[0].schema.openAPIV3Schema', 'message': f'Invalid value: "object": {exc}'}]) from exc
        return ResourceType(
            spec['group'], version['name'], names['kind'], names['plural'], names.get('singular') or names['kind'].lower(),
            spec['scope'] == 'Namespaced', list(names.get('shortNames') or []), list(names.get('categories') or []),
            status_subresource='status' in (version.get('subresources') or {}), has_generation=True, schema=schema,
            field_selectors=COMMON_FIELDS)

    # --------------------------------------------------------------- watch
    async def _watch(self, request: web.Request, rtype: ResourceType, namespace: str | None) -> web.StreamResponse:
        query = request.query
        watcher = Watcher(rtype.key, namespace, self._predicate(rtype, query))
        since = query.get('resourceVersion')
        timeout = _int_param(query, 'timeoutSeconds') or 1800.0 * (1 + random.random())
        bookmarks = _truthy(query.get('allowWatchBookmarks'))
        initial: list[bytes] = []
        expired = None
        if since in (None, '', '0'):
            for entry in self.store.sorted_entries(rtype.key, namespace):
                if watcher.predicate is None or watcher.predicate(entry.obj):
                    initial.append(b'{"type":"ADDED","object":' + entry.raw + b'}\n')
        else:
            try:
                since_rv = int(since)
            except ValueError as exc:
                raise bad_request(f'invalid resource version: {since}') from exc
            events = self.store.events_since(since_rv, rtype.key)
            if events is None:
                expired = status_body(410, f'too old resource version: {since_rv} ({self.store.oldest_rv()})', 'Expired')
            else:
                initial.extend(line for line in (watcher.line_for(e) for e in events) if line is not None)
        resp = web.StreamResponse(headers={'Content-Type': _JSON, 'Cache-Control': 'no-cache, private'})
        resp.enable_chunked_encoding()
        if expired is not None:
            # Like the real server: a 200 stream carrying one ERROR event, then the end.
            await resp.prepare(request)
            await resp.write(b'{"type":"ERROR","object":' + to_bytes(expired) + b'}\n')
            await resp.write_eof()
            return resp
        self.store.subscribe(watcher)
        try:
            await resp.prepare(request)
            if initial:
                await resp.write(b''.join(initial))
            if not await self._pump(request, resp, watcher, rtype, timeout, bookmarks):
                await resp.write_eof()
        except ConnectionResetError:
            LOG.debug('watch client went away')
        finally:
            self.store.unsubscribe(watcher)
        return resp

    async def _pump(self, request: web.Request, resp: web.StreamResponse, watcher: Watcher, rtype: ResourceType, timeout: float,
                    bookmarks: bool) -> bool:
        """Stream queued lines until timeout/shutdown; True when the stream was cut on purpose (fault)."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = start + timeout
        interval = self.bookmark_interval
        next_bookmark = start + interval if bookmarks else float('inf')
        queue = watcher.queue
        while not self.closing:
            now = loop.time()
            # Read the switch on every turn: a cut set while a stream is open reaches it too, as a network fault would.
            cut_at = start + watch_cut_after(self.faults, request.path)
            if now >= cut_at:
                # An abrupt end: no terminating chunk, the client sees a broken stream.
                if request.transport is not None:
                    request.transport.abort()
                return True
            if now >= deadline:
                return False
            try:
                async with asyncio.timeout(min(deadline, cut_at, next_bookmark, now + FAULT_POLL) - now):
                    line = await queue.get()
            except TimeoutError:
                if bookmarks and loop.time() >= next_bookmark and queue.empty():
                    mark = {'kind': rtype.kind, 'apiVersion': rtype.api_version, 'metadata': {'resourceVersion': str(self.store.rv)}}
                    await resp.write(b'{"type":"BOOKMARK","object":' + to_bytes(mark) + b'}\n')
                    next_bookmark = loop.time() + interval
                continue
            if line is None:
                return False
            batch = [line]
            while not queue.empty():
                more = queue.get_nowait()
                if more is None:
                    await resp.write(b''.join(batch))
                    return False
                batch.append(more)
            await resp.write(b''.join(batch))
        return False


def random_token() -> str:
    """A bearer token for a server started without one."""
    return ''.join(secrets.choice(string.ascii_letters + string.digits) for _pos in range(40))
