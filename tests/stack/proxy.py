"""A small proxy in front of kube-apiserver: the fault switch and the write log of the API stand-in, on the real server.

The reliability suite and the overlap checks need two things a real API server does not offer: injected faults (error
rate, latency, cut watch streams) and a log of every write with the User-Agent that made it (a job's User-Agent names its
AAP job). ``APIProxy`` adds them in front of kube-apiserver with the stand-in's interface (``faults``, ``write_log()``,
``clear_write_log()``, ``/_admin/faults``, ``/_admin/writes``; see tests/stack/kubeapi/README.md), so the same tests run on
either.

It terminates TLS with its own serving certificate (signed by the control plane's CA, so one CA verifies both) and
forwards every request to kube-apiserver over TLS, streaming responses (watches too) through:

- a request with an ``Authorization`` header (a bearer token) is forwarded with that header and no client certificate:
  kube-apiserver authenticates and authorizes the caller itself (401 for a bad token, RBAC for the rest);
- a request made with a client certificate (verified against the CA) is forwarded with the proxy's front-proxy client
  certificate and ``X-Remote-User``/``X-Remote-Group`` from the certificate's CN and O, which kube-apiserver's
  requestheader authenticator trusts (the way kube-aggregator passes on identities); clients' own ``X-Remote-*``
  headers are always dropped;
- a request with neither goes on anonymous (kube-apiserver decides: system:anonymous).

Faults and the write log behave as in the stand-in (tests/stack/kubeapi/faults.py and server.py): a faulted request never
reaches kube-apiserver, the write log records every handled POST/PUT/PATCH/DELETE with its final status, the admin
endpoints need the admin bearer token and are never faulted or logged.
"""
from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections import deque

import aiohttp
import yarl
from aiohttp import web

from .kubeapi.errors import status_body
from .kubeapi.faults import FAULT_POLL, FaultSwitch, watch_cut_after
from .loop_thread import LoopThreadMixin

LOG = logging.getLogger(__name__)

_MUTATING = frozenset(('POST', 'PUT', 'PATCH', 'DELETE'))
# Hop-by-hop headers (RFC 9110 7.6.1) and those the proxy sets itself.
_REQUEST_DROP = frozenset(('connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding',
                           'upgrade', 'host', 'content-length', 'accept-encoding'))
_RESPONSE_DROP = frozenset(('connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding',
                            'upgrade', 'content-length', 'content-encoding', 'date', 'server'))
_REQUESTHEADER_PREFIXES = ('x-remote-',)
# Path segments after /api/v1/namespaces/<name>/ that are a namespace's own subresources, not a namespaced resource.
_NAMESPACE_SUBRESOURCES = frozenset(('status', 'finalize'))


def _json_response(body, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(body=json.dumps(body, separators=(',', ':')).encode(), status=status, content_type='application/json',
                        headers=headers)


def write_target(path: str) -> tuple:
    """(plural, namespace, name, subresource) of a resource path, as the stand-in's write log names them."""
    segs = [seg for seg in path.split('/') if seg]
    if len(segs) >= 3 and segs[0] == 'api':
        rest = segs[2:]
    elif len(segs) >= 4 and segs[0] == 'apis':
        rest = segs[3:]
    else:
        return None, None, None, None
    if rest and rest[0] == 'watch':
        rest = rest[1:]
    if len(rest) >= 3 and rest[0] == 'namespaces' and rest[2] not in _NAMESPACE_SUBRESOURCES:
        rest = rest[1:] + [None] * 4
        return rest[1], rest[0], rest[2], rest[3]
    rest = list(rest) + [None] * 3
    return rest[0], None, rest[1], rest[2]


def _is_watch(request: web.Request) -> bool:
    segs = [seg for seg in request.path.split('/') if seg]
    return request.query.get('watch', '').lower() in ('1', 'true') or (len(segs) > 3 and 'watch' in segs[2:4])


class APIProxy(LoopThreadMixin):
    """The proxy on a background thread (``start()``/``stop()``, a context manager), or ``start_async()`` on a running loop.

    ``upstream``: kube-apiserver's URL; ``ca_file``: the CA of its serving certificate and of client certificates;
    ``cert_file``/``key_file``: the proxy's serving certificate; ``front_proxy_cert``/``front_proxy_key``: the client
    certificate kube-apiserver's requestheader authenticator trusts; ``token``: the bearer token of the admin endpoints.
    """

    thread_name = 'api-proxy'

    def __init__(self, upstream: str, ca_file, cert_file, key_file, front_proxy_cert, front_proxy_key, token: str,
                 host: str = '127.0.0.1', port: int = 0, fault_seed: int | None = None, write_log_size: int = 100000):
        self.upstream = upstream.rstrip('/')
        self.host, self.port = host, port
        self.token = token
        self.faults = FaultSwitch(fault_seed)
        self.writes: deque = deque(maxlen=write_log_size)
        self.write_seq = 0
        self._files = (str(ca_file), str(cert_file), str(key_file), str(front_proxy_cert), str(front_proxy_key))
        self._runner: web.AppRunner | None = None
        self._plain: aiohttp.ClientSession | None = None
        self._front: aiohttp.ClientSession | None = None
        self.closing = False
        self._init_loop_thread()

    @property
    def url(self) -> str:
        """``https://host:port`` once started."""
        return f'https://{self.host}:{self.port}'

    # ------------------------------------------------------------------ lifecycle
    async def start_async(self) -> None:
        """Listen (TLS) and open the two upstream connection pools."""
        ca_file, cert_file, key_file, front_cert, front_key = self._files
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca_file)
        server_ctx.load_cert_chain(cert_file, key_file)
        server_ctx.verify_mode = ssl.CERT_OPTIONAL  # a client certificate is one way to authenticate, not required
        plain_ctx = ssl.create_default_context(cafile=ca_file)
        front_ctx = ssl.create_default_context(cafile=ca_file)
        front_ctx.load_cert_chain(front_cert, front_key)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
        # auto_decompress off and 'Accept-Encoding: identity' upstream: bodies pass through as kube-apiserver sent them.
        # No headers of aiohttp's own: a request without Content-Type must reach kube-apiserver without one (it means JSON).
        self._plain, self._front = (aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, ssl=context), timeout=timeout,
                                                          auto_decompress=False, skip_auto_headers=('User-Agent', 'Content-Type', 'Accept'))
                                    for context in (plain_ctx, front_ctx))
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route('*', '/{tail:.*}', self.handle)
        app.on_shutdown.append(self._on_shutdown)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=server_ctx, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _on_shutdown(self, _app) -> None:
        self.closing = True

    async def stop_async(self) -> None:
        """Close the listener, the streams and the upstream pools."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for session in (self._plain, self._front):
            if session is not None:
                await session.close()
        self._plain = self._front = None

    # ------------------------------------------------------------------ the stand-in's interface
    def call(self, func, *args):
        """Run ``func(*args)`` on the proxy's loop and return its result."""
        if self._loop is None:
            return func(*args)

        async def run():
            return func(*args)
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(30)

    def write_log(self, since_seq: int = 0) -> list[dict]:
        """Copies of the logged writes with ``seq > since_seq``, oldest first."""
        return self.call(lambda: [dict(e) for e in self.writes if e['seq'] > since_seq])

    def clear_write_log(self) -> None:
        """Forget every logged write; ``seq`` keeps counting."""
        self.call(self.writes.clear)

    # ------------------------------------------------------------------ requests
    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Admin endpoints, else faults, then forward; log the writes."""
        if request.path.startswith('/_admin/'):
            return await self._admin(request)
        resp = await self._handle(request)
        if request.method in _MUTATING:
            self._log_write(request, resp)
        return resp

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        cfg = self.faults.config
        if cfg.latency > 0 and self.faults.applies(request.method, request.path):
            await asyncio.sleep(cfg.latency)
        fault = self.faults.pick_error(request.method, request.path)
        if fault is not None:
            code, body, headers = fault
            return _json_response(body, code, headers)
        try:
            return await self._forward(request)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except aiohttp.ClientError as exc:
            LOG.warning('upstream error on %s %s: %s', request.method, request.path, exc)
            return _json_response(status_body(503, f'the API server is unreachable: {exc}', 'ServiceUnavailable', {}), 503)

    def _upstream_request(self, request: web.Request) -> tuple[aiohttp.ClientSession, dict, list | None]:
        """(session, headers, groups): groups is None unless the caller is passed on as a client-certificate user."""
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in _REQUEST_DROP and not k.lower().startswith(_REQUESTHEADER_PREFIXES)}
        headers['Accept-Encoding'] = 'identity'
        peer = request.transport.get_extra_info('peercert') if request.transport is not None else None
        if peer and 'Authorization' not in request.headers:
            subject = [attr for rdn in peer.get('subject', ()) for attr in rdn]
            user = next((value for key, value in subject if key == 'commonName'), None)
            if user:
                groups = [value for key, value in subject if key == 'organizationName']
                return self._front, dict(headers, **{'X-Remote-User': user}), groups
        return self._plain, headers, None

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        session, headers, groups = self._upstream_request(request)
        if groups is not None:
            # Repeated X-Remote-Group headers, one per group (a dict cannot hold them).
            headers = list(headers.items()) + [('X-Remote-Group', group) for group in groups]
        data = await request.read() if request.body_exists else None
        url = yarl.URL(self.upstream + request.raw_path, encoded=True)  # the client's own percent-encoding, unchanged
        watching = request.method == 'GET' and _is_watch(request)
        async with session.request(request.method, url, headers=headers, data=data, allow_redirects=False) as upstream:
            out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _RESPONSE_DROP}
            if request.method in _MUTATING or not watching:
                body = await upstream.read()
                return web.Response(body=body, status=upstream.status, headers=out_headers)
            resp = web.StreamResponse(status=upstream.status, headers=out_headers)
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            if not await self._pump(request, resp, upstream):
                await resp.write_eof()
            return resp

    async def _pump(self, request: web.Request, resp: web.StreamResponse, upstream: aiohttp.ClientResponse) -> bool:
        """Copy a watch stream; True when it was cut on purpose (fault): an abrupt end, no terminating chunk."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        pending = None
        while not self.closing:
            # Read the switch on every turn: a cut set while a stream is open reaches it too, as a network fault would.
            if loop.time() >= start + watch_cut_after(self.faults, request.path):
                if pending is not None:
                    pending.cancel()
                if request.transport is not None:
                    request.transport.abort()
                return True
            pending = pending or asyncio.ensure_future(upstream.content.readany())
            done, _waiting = await asyncio.wait({pending}, timeout=FAULT_POLL)
            if not done:
                continue
            chunk, pending = pending.result(), None
            if not chunk:
                return False
            await resp.write(chunk)
        if pending is not None:
            pending.cancel()
        return False

    # ------------------------------------------------------------------ write log
    def _log_write(self, request: web.Request, resp: web.StreamResponse) -> None:
        kind, namespace, name, subresource = write_target(request.path)
        rv = None
        body = getattr(resp, 'body', None)
        if isinstance(body, bytes) and 200 <= resp.status < 300:
            try:
                rv = (json.loads(body).get('metadata') or {}).get('resourceVersion') or None
            except (ValueError, AttributeError):
                rv = None
        self.write_seq += 1
        self.writes.append({
            'seq': self.write_seq, 'time': time.time(), 'monotonic': time.monotonic(), 'method': request.method, 'path': request.path,
            'query': dict(request.query), 'status': resp.status, 'user_agent': request.headers.get('User-Agent'),
            'kind': kind, 'namespace': namespace, 'name': name, 'subresource': subresource, 'resource_version': rv})

    # ------------------------------------------------------------------ admin
    async def _admin(self, request: web.Request) -> web.Response:
        if request.headers.get('Authorization', '') != f'Bearer {self.token}':
            return _json_response(status_body(401, 'Unauthorized', 'Unauthorized'), 401)
        path = request.path.rstrip('/')
        if path == '/_admin/writes':
            if request.method == 'GET':
                try:
                    since = int(request.query.get('since') or 0)
                except ValueError:
                    return _json_response(status_body(400, f'invalid value for since: {request.query.get("since")!r}', 'BadRequest'), 400)
                return _json_response([dict(e) for e in self.writes if e['seq'] > since])
            if request.method == 'DELETE':
                self.writes.clear()
                return _json_response({'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Success'})
        elif path == '/_admin/faults':
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
                    return _json_response(status_body(400, str(exc), 'BadRequest'), 400)
                return _json_response(cfg.as_dict())
        else:
            return _json_response(status_body(404, 'the server could not find the requested resource', 'NotFound', {}), 404)
        return _json_response(status_body(405, 'the server does not allow this method on the requested resource', 'MethodNotAllowed', {}), 405)
