"""A stand-in of the fulfillment service's compute instance templates endpoints (what publish_templates.yml talks to).

``/api/private/v1/compute_instance_templates``: GET lists ``{"items": [...], "size": N}``, POST creates one (409 when the
id exists, 400 without an id), ``GET|PATCH .../<id>`` reads or updates one (404 when unknown; PATCH merges the given
fields, the id cannot change). Every request needs ``Authorization: Bearer <token>`` (401 otherwise). Templates are
kept in memory with the fields the service adds (``metadata.creation_timestamp``); ``requests()`` is the request log.
With ``certificate``/``key`` it serves HTTPS.
"""
from __future__ import annotations

import datetime
import json
import secrets
import ssl
import threading

from aiohttp import web

from .loop_thread import LoopThreadMixin

TEMPLATES_PATH = '/api/private/v1/compute_instance_templates'


class FulfillmentServer(LoopThreadMixin):
    """The stand-in on a background thread; ``templates`` preloads the store (a list of template dicts)."""

    thread_name = 'fulfillment stand-in'

    def __init__(self, token: str | None = None, templates=(), host: str = '127.0.0.1', port: int = 0,
                 certificate: str | None = None, key: str | None = None):
        self.host = host
        self.port = port
        self.token = token or secrets.token_hex(20)
        self.certificate = certificate
        self.key = key
        self._lock = threading.Lock()
        self._templates: dict[str, dict] = {}
        self._log: list[dict] = []
        for template in templates:
            self._store(dict(template))
        self._runner: web.AppRunner | None = None
        self._init_loop_thread()

    @property
    def url(self) -> str:
        return f"{'https' if self.certificate else 'http'}://{self.host}:{self.port}"

    # ------------------------------------------------------------ inspection
    def requests(self) -> list[dict]:
        """Every request received, oldest first: method, path, status, authorized, body (decoded JSON or None)."""
        with self._lock:
            return [dict(entry) for entry in self._log]

    def templates(self) -> dict[str, dict]:
        """The stored templates by id."""
        with self._lock:
            return json.loads(json.dumps(self._templates))

    # ------------------------------------------------------------ handlers
    def _store(self, template: dict) -> dict:
        now = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
        template.setdefault('metadata', {'creation_timestamp': now})
        self._templates[template['id']] = template
        return template

    def _answer(self, request: web.Request, body, status: int, authorized: bool, sent) -> web.Response:
        with self._lock:
            self._log.append({'method': request.method, 'path': request.path, 'status': status, 'authorized': authorized,
                              'body': sent})
        return web.json_response(body, status=status)

    async def _handle(self, request: web.Request) -> web.Response:
        authorized = request.headers.get('Authorization') == f'Bearer {self.token}'
        sent = None
        if request.can_read_body:
            try:
                sent = json.loads(await request.text())
            except ValueError:
                return self._answer(request, {'message': 'the body is not JSON'}, 400, authorized, None)
        if not authorized:
            return self._answer(request, {'message': 'a valid bearer token is required'}, 401, authorized, sent)
        template_id = request.match_info.get('template_id')
        with self._lock:
            status, body = self._dispatch(request.method, template_id, sent)
        return self._answer(request, body, status, authorized, sent)

    def _dispatch(self, method: str, template_id: str | None, sent) -> tuple[int, object]:
        if template_id is None and method == 'GET':
            items = [self._templates[key] for key in sorted(self._templates)]
            return 200, {'items': items, 'size': len(items)}
        if template_id is None and method == 'POST':
            if not isinstance(sent, dict) or not isinstance(sent.get('id'), str) or not sent['id']:
                return 400, {'message': 'a template needs an id'}
            if sent['id'] in self._templates:
                return 409, {'message': f"template {sent['id']} already exists"}
            return 201, self._store(dict(sent))
        current = self._templates.get(template_id or '')
        if current is None:
            return 404, {'message': f'template {template_id} not found'}
        if method == 'GET':
            return 200, current
        if method == 'PATCH':
            if not isinstance(sent, dict) or sent.get('id', template_id) != template_id:
                return 400, {'message': 'the body must be an object with the same id'}
            current.update((key, value) for key, value in sent.items() if key != 'metadata')
            return 200, current
        return 405, {'message': f'{method} is not allowed'}

    # ------------------------------------------------------------ lifecycle
    async def start_async(self) -> None:
        app = web.Application()
        app.router.add_route('*', TEMPLATES_PATH, self._handle)
        app.router.add_route('*', TEMPLATES_PATH + '/{template_id}', self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        context = None
        if self.certificate:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.certificate, self.key)
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=context, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop_async(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
