"""The automation controller REST API of the stand-in (aiohttp), served under ``/api/v2/`` and ``/api/controller/v2/``.

URLs in answers (``url``, ``related``, ``next``) are absolute paths under the prefix the request came in on, as
AAP's gateway rewrites them, so a client that started on ``/api/controller/`` stays there.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import json
import time
from urllib.parse import urlencode

from aiohttp import web

from .model import ACTIVE, FAILED, TERMINAL, Job, Store, Template, parse_extra_vars, timestamp

PREFIXES = ('/api', '/api/controller')
PRODUCT_HEADERS = {'X-API-Product-Name': 'AWX', 'X-API-Product-Version': '24.6.1'}
DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 200
# Fields AWX's list serializers leave out of job lists (UnifiedJobListSerializer).
LIST_EXCLUDED = ('result_traceback', 'job_args', 'job_cwd', 'job_env', 'event_processing_finished')
TEMPLATE_ENDPOINTS = {'job_templates': 'job', 'workflow_job_templates': 'workflow'}
JOB_ENDPOINTS = {'jobs': 'job', 'workflow_jobs': 'workflow_job'}


def _bool(value: str) -> bool:
    return value.strip().lower() in ('1', 'true', 'yes', 'on')


class ControllerAPI:
    """Request handlers over a Store; ``token`` (and optionally ``username``/``password``) guard every endpoint."""

    def __init__(self, store: Store, token: str, username: str | None = None, password: str | None = None,
                 page_size: int = DEFAULT_PAGE_SIZE):
        self.store = store
        self.token = token
        self.username = username
        self.password = password
        self.page_size = page_size
        self.requests: list[tuple[str, str]] = []

    def make_app(self) -> web.Application:
        """The aiohttp application with every route under both prefixes."""
        app = web.Application(middlewares=[self._middleware])
        for prefix in PREFIXES:
            base = prefix + '/v2'
            app.router.add_get(prefix + '/', self.api_root)
            app.router.add_get(base + '/', self.v2_root)
            app.router.add_get(base + '/ping/', self.ping)
            app.router.add_get(base + '/config/', self.config)
            app.router.add_get(base + '/me/', self.me)
            app.router.add_post(base + '/tokens/', self.create_token)
            app.router.add_get(base + '/organizations/', self.organizations)
            app.router.add_get(base + '/labels/', self.labels)
            app.router.add_get(base + '/unified_job_templates/', self.unified_job_templates)
            for endpoint in TEMPLATE_ENDPOINTS:
                app.router.add_get(f'{base}/{endpoint}/', self.template_list)
                app.router.add_get(f'{base}/{endpoint}/{{key}}/', self.template_detail)
                app.router.add_get(f'{base}/{endpoint}/{{key}}/launch/', self.launch_info)
                app.router.add_post(f'{base}/{endpoint}/{{key}}/launch/', self.launch)
                app.router.add_get(f'{base}/{endpoint}/{{key}}/{{jobs:jobs|workflow_jobs}}/', self.template_jobs)
            for endpoint in JOB_ENDPOINTS:
                app.router.add_get(f'{base}/{endpoint}/', self.job_list)
                app.router.add_get(f'{base}/{endpoint}/{{id:\\d+}}/', self.job_detail)
                app.router.add_delete(f'{base}/{endpoint}/{{id:\\d+}}/', self.job_delete)
                app.router.add_get(f'{base}/{endpoint}/{{id:\\d+}}/cancel/', self.cancel_info)
                app.router.add_post(f'{base}/{endpoint}/{{id:\\d+}}/cancel/', self.cancel)
            app.router.add_get(base + '/jobs/{id:\\d+}/stdout/', self.stdout)
            app.router.add_get(base + '/workflow_jobs/{id:\\d+}/workflow_nodes/', self.workflow_nodes)
        return app

    # ------------------------------------------------------------ plumbing
    @web.middleware
    async def _middleware(self, request: web.Request, handler):
        self.requests.append((request.method, request.path_qs))
        if not self._authenticated(request):
            detail = 'Authentication credentials were not provided.' if 'Authorization' not in request.headers else 'Invalid token.'
            response = web.json_response({'detail': detail}, status=401,
                                         headers={'WWW-Authenticate': 'Bearer realm=api authorization_url=/api/o/authorize/'})
        else:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                if exc.status in (404, 405) and not exc.text.startswith('{'):
                    detail = 'Not found.' if exc.status == 404 else f'Method "{request.method}" not allowed.'
                    response = web.json_response({'detail': detail}, status=exc.status)
                else:
                    raise
        response.headers.update(PRODUCT_HEADERS)
        return response

    def _authenticated(self, request: web.Request) -> bool:
        header = request.headers.get('Authorization', '')
        scheme, _sep, credentials = header.partition(' ')
        if scheme.lower() == 'bearer':
            return hmac.compare_digest(credentials.strip().encode(), self.token.encode())
        if scheme.lower() == 'basic' and self.username is not None:
            try:
                user, _sep, password = base64.b64decode(credentials.strip()).decode().partition(':')
            except (binascii.Error, UnicodeDecodeError):
                return False
            return hmac.compare_digest(user.encode(), self.username.encode()) and \
                hmac.compare_digest(password.encode(), (self.password or '').encode())
        return False

    @staticmethod
    def _prefix(request: web.Request) -> str:
        return '/api/controller' if request.path.startswith('/api/controller/') else '/api'

    @staticmethod
    def _error(status: int, detail: str, **extra) -> web.Response:
        return web.json_response(dict(detail=detail, **extra), status=status)

    def _page(self, request: web.Request, items: list, render) -> web.Response:
        """AWX's pagination: count/next/previous/results, ``page`` and ``page_size`` parameters."""
        query = request.rel_url.query
        try:
            page = max(1, int(query.get('page', 1)))
            size = min(MAX_PAGE_SIZE, max(1, int(query.get('page_size', self.page_size))))
        except ValueError:
            return self._error(400, 'page and page_size must be integers.')
        total = len(items)
        if total and (page - 1) * size >= total:
            return self._error(404, 'Invalid page.')

        def link(number):
            params = [(k, v) for k, v in query.items() if k != 'page'] + [('page', str(number))]
            return f'{request.path}?{urlencode(params)}'
        return web.json_response({
            'count': total,
            'next': link(page + 1) if page * size < total else None,
            'previous': link(page - 1) if page > 1 else None,
            'results': [render(item) for item in items[(page - 1) * size:page * size]],
        })

    @staticmethod
    def _filter(items: list, query, fields: dict) -> list:
        """AWX-style field lookups: ``f``, ``f__in``, ``f__icontains``, and the ``or__f`` alternatives.

        ``fields`` maps a lookup name to a function giving that field's value of an item.
        """
        result = []
        ors = [(k[4:], v) for k, v in query.items() if k.startswith('or__')]
        for item in items:
            keep = True
            for key, value in query.items():
                if key in ('page', 'page_size', 'order_by', 'format') or key.startswith('or__'):
                    continue
                field, _sep, lookup = key.partition('__')
                if field not in fields:
                    continue
                actual = fields[field](item)
                if lookup == 'in':
                    keep = str(actual) in value.split(',')
                elif lookup == 'icontains':
                    keep = value.lower() in str(actual).lower()
                else:
                    keep = str(actual) == value
                if not keep:
                    break
            if keep and ors:
                keep = any(field in fields and str(fields[field](item)) == value for field, value in ors)
            if keep:
                result.append(item)
        return result

    # --------------------------------------------------------- simple ones
    async def api_root(self, request: web.Request) -> web.Response:
        """The API root."""
        return web.json_response({'description': 'AWX REST API', 'current_version': self._prefix(request) + '/v2/',
                                  'available_versions': {'v2': self._prefix(request) + '/v2/'}})

    async def v2_root(self, request: web.Request) -> web.Response:
        """The v2 root: links to the endpoints served."""
        base = self._prefix(request) + '/v2/'
        names = ('ping', 'config', 'me', 'organizations', 'unified_job_templates', 'job_templates', 'workflow_job_templates',
                 'jobs', 'workflow_jobs')
        return web.json_response({name: f'{base}{name}/' for name in names})

    async def ping(self, request: web.Request) -> web.Response:
        """``ping``: version and a single online instance."""
        return web.json_response({'ha': False, 'version': PRODUCT_HEADERS['X-API-Product-Version'], 'active_node': 'stand-in',
                                  'install_uuid': '00000000-0000-0000-0000-000000000000',
                                  'instances': [{'node': 'stand-in', 'node_type': 'hybrid', 'heartbeat': timestamp(time.time()),
                                                 'capacity': 100, 'version': PRODUCT_HEADERS['X-API-Product-Version']}],
                                  'instance_groups': [{'name': 'default', 'capacity': 100, 'instances': ['stand-in']}]})

    async def config(self, request: web.Request) -> web.Response:
        """``config``: the version ansible-rulebook logs on start."""
        return web.json_response({'version': PRODUCT_HEADERS['X-API-Product-Version'], 'time_zone': 'UTC',
                                  'license_info': {'license_type': 'open', 'valid_key': True}, 'analytics_status': 'off',
                                  'project_base_dir': str(self.store.project_dir)})

    async def me(self, request: web.Request) -> web.Response:
        """The one user."""
        return web.json_response({'count': 1, 'next': None, 'previous': None,
                                  'results': [{'id': 1, 'type': 'user', 'username': self.username or 'admin', 'is_superuser': True}]})

    async def create_token(self, request: web.Request) -> web.Response:
        """``POST tokens/`` (awx.awx with username/password): hands out the server's token."""
        return web.json_response({'id': 1, 'type': 'o_auth2_access_token', 'token': self.token, 'scope': 'write'}, status=201)

    async def organizations(self, request: web.Request) -> web.Response:
        """Organizations (derived from the templates)."""
        orgs = [{'id': oid, 'name': name} for name, oid in sorted(self.store.organizations.items(), key=lambda kv: kv[1])]
        orgs = self._filter(orgs, request.rel_url.query, {'id': lambda o: o['id'], 'name': lambda o: o['name']})
        return self._page(request, orgs, lambda o: dict(o, type='organization', url=f'{self._prefix(request)}/v2/organizations/{o["id"]}/'))

    async def labels(self, request: web.Request) -> web.Response:
        """No labels: ansible-rulebook asks for them only when a template prompts for labels."""
        return self._page(request, [], lambda item: item)

    # ------------------------------------------------------------ templates
    def render_template(self, template: Template, prefix: str) -> dict:
        """A job template or workflow job template as AWX serializes it (the fields clients read)."""
        endpoint = 'job_templates' if template.kind == 'job' else 'workflow_job_templates'
        url = f'{prefix}/v2/{endpoint}/{template.id}/'
        jobs = 'jobs' if template.kind == 'job' else 'workflow_jobs'
        data = {
            'id': template.id, 'type': template.unified_type, 'url': url, 'name': template.name, 'description': template.description,
            'created': timestamp(template.created), 'modified': timestamp(template.created),
            'organization': template.organization_id,
            'related': {'launch': url + 'launch/', jobs: url + jobs + '/', 'organization': f'{prefix}/v2/organizations/{template.organization_id}/'},
            'summary_fields': {'organization': {'id': template.organization_id, 'name': template.organization, 'description': ''}},
            'extra_vars': json.dumps(template.extra_vars), 'allow_simultaneous': template.allow_simultaneous,
            'ask_variables_on_launch': template.ask_variables_on_launch, 'ask_limit_on_launch': template.ask_limit_on_launch,
            'ask_inventory_on_launch': template.ask_inventory_on_launch, 'ask_labels_on_launch': template.ask_labels_on_launch,
            'survey_enabled': False, 'status': self._template_status(template),
        }
        for ask in ('scm_branch', 'diff_mode', 'tags', 'skip_tags', 'job_type', 'verbosity', 'credential', 'execution_environment',
                    'forks', 'job_slice_count', 'timeout', 'instance_groups'):
            data[f'ask_{ask}_on_launch'] = False
        if template.kind == 'job':
            data.update(playbook=template.playbook, job_type='run', project=1, inventory=1)
        return data

    def _template_status(self, template: Template) -> str:
        jobs = [j for j in self.store.jobs.values() if j.template is template]
        return jobs[-1].status if jobs else 'never updated'

    def _template_lookup(self, kind: str | None) -> list:
        return [t for t in self.store.templates if kind is None or t.kind == kind]

    _TEMPLATE_FIELDS = {
        'id': lambda t: t.id, 'name': lambda t: t.name, 'organization': lambda t: t.organization_id,
        'type': lambda t: t.unified_type, 'organization__name': lambda t: t.organization,
    }

    async def unified_job_templates(self, request: web.Request) -> web.Response:
        """Job and workflow job templates together (ansible-rulebook's lookup)."""
        prefix = self._prefix(request)
        with self.store.lock:
            items = self._filter(self._template_lookup(None), request.rel_url.query, self._TEMPLATE_FIELDS)
            return self._page(request, items, lambda t: self.render_template(t, prefix))

    async def template_list(self, request: web.Request) -> web.Response:
        """``job_templates/`` or ``workflow_job_templates/``."""
        prefix = self._prefix(request)
        kind = TEMPLATE_ENDPOINTS[request.path.rstrip('/').rsplit('/', 1)[-1]]
        with self.store.lock:
            items = self._filter(self._template_lookup(kind), request.rel_url.query, self._TEMPLATE_FIELDS)
            return self._page(request, items, lambda t: self.render_template(t, prefix))

    def _find_template(self, request: web.Request) -> Template:
        """By id, by AWX named URL (``name++organization``), or by a name that is unique among that kind."""
        kind = TEMPLATE_ENDPOINTS[request.path[len(self._prefix(request)) + 4:].split('/', 1)[0]]
        key = request.match_info['key']
        candidates = self._template_lookup(kind)
        if key.isdigit():
            found = [t for t in candidates if t.id == int(key)]
        elif '++' in key:
            name, _sep, org = key.rpartition('++')
            found = [t for t in candidates if t.name == name and t.organization == org]
        else:
            found = [t for t in candidates if t.name == key]
        if len(found) != 1:
            raise web.HTTPNotFound()
        return found[0]

    async def template_detail(self, request: web.Request) -> web.Response:
        """One template."""
        with self.store.lock:
            return web.json_response(self.render_template(self._find_template(request), self._prefix(request)))

    async def launch_info(self, request: web.Request) -> web.Response:
        """``GET .../launch/``: what the launch would ask for."""
        with self.store.lock:
            template = self._find_template(request)
            return web.json_response({
                'can_start_without_user_input': True, 'passwords_needed_to_start': [], 'variables_needed_to_start': [],
                'survey_enabled': False, 'ask_variables_on_launch': template.ask_variables_on_launch,
                'ask_limit_on_launch': template.ask_limit_on_launch, 'ask_inventory_on_launch': template.ask_inventory_on_launch,
                'ask_labels_on_launch': template.ask_labels_on_launch, 'defaults': {'extra_vars': json.dumps(template.extra_vars)},
                'job_template_data': {'id': template.id, 'name': template.name, 'description': template.description},
            })

    async def launch(self, request: web.Request) -> web.Response:
        """``POST .../launch/``: 201 with the new job; prompts the template does not ask for are ignored and reported."""
        try:
            body = await request.json() if request.can_read_body else {}
        except ValueError:
            return self._error(400, 'JSON parse error - not a JSON object')
        if not isinstance(body, dict):
            return self._error(400, 'Expected a JSON object.')
        with self.store.lock:
            template = self._find_template(request)
            ignored = {}
            extra_vars = {}
            if 'extra_vars' in body:
                if template.ask_variables_on_launch:
                    try:
                        extra_vars = parse_extra_vars(body['extra_vars'])
                    except ValueError as exc:
                        return web.json_response({'extra_vars': [str(exc)]}, status=400)
                else:
                    ignored['extra_vars'] = body['extra_vars']
            limit = ''
            if body.get('limit'):
                if template.ask_limit_on_launch:
                    limit = str(body['limit'])
                else:
                    ignored['limit'] = body['limit']
            for field in ('inventory', 'labels', 'credentials', 'job_tags', 'skip_tags', 'verbosity', 'job_type', 'diff_mode', 'scm_branch'):
                if field in body:
                    ignored[field] = body[field]
            try:
                job = self.store.launch(template, extra_vars, limit=limit)
            except RuntimeError as exc:
                return self._error(503, str(exc))
            data = {'job' if job.kind == 'job' else 'workflow_job': job.id, 'ignored_fields': ignored}
            data.update(self.render_job(job, self._prefix(request), detail=True))
            return web.json_response(data, status=201, headers={'Location': data['url']})

    async def template_jobs(self, request: web.Request) -> web.Response:
        """``job_templates/<id>/jobs/`` and ``workflow_job_templates/<id>/workflow_jobs/``."""
        prefix = self._prefix(request)
        with self.store.lock:
            template = self._find_template(request)
            jobs = [j for j in self.store.jobs.values() if j.template is template]
            jobs = self._filter(jobs, request.rel_url.query, self._JOB_FIELDS)
            return self._page(request, self._ordered(jobs, request), lambda j: self.render_job(j, prefix, detail=False))

    # ----------------------------------------------------------------- jobs
    def render_job(self, job: Job, prefix: str, detail: bool) -> dict:
        """A job or workflow job as AWX serializes it; lists leave out what AWX's list serializers leave out."""
        endpoint = 'jobs' if job.kind == 'job' else 'workflow_jobs'
        url = f'{prefix}/v2/{endpoint}/{job.id}/'
        template = job.template
        template_endpoint = 'job_templates' if template.kind == 'job' else 'workflow_job_templates'
        template_key = 'job_template' if template.kind == 'job' else 'workflow_job_template'
        template_url = f'{prefix}/v2/{template_endpoint}/{template.id}/'
        summary = {
            'organization': {'id': template.organization_id, 'name': template.organization, 'description': ''},
            template_key: {'id': template.id, 'name': template.name, 'description': template.description},
            'unified_job_template': {'id': template.id, 'name': template.name, 'unified_job_type': job.kind},
            'created_by': {'id': 1, 'username': self.username or 'admin'},
            'user_capabilities': {'delete': job.status not in ACTIVE, 'start': True},
        }
        if job.parent is not None:
            summary['source_workflow_job'] = {'id': job.parent.id, 'name': job.parent.template.name, 'status': job.parent.status}
        related = {'cancel': url + 'cancel/', template_key: template_url, 'unified_job_template': template_url,
                   'organization': f'{prefix}/v2/organizations/{template.organization_id}/', 'relaunch': url + 'relaunch/'}
        if job.kind == 'job':
            related['stdout'] = url + 'stdout/'
        else:
            related['workflow_nodes'] = url + 'workflow_nodes/'
        data = {
            'id': job.id, 'type': job.kind, 'url': url, 'related': related, 'summary_fields': summary,
            'created': timestamp(job.created), 'modified': timestamp(job.modified), 'name': template.name,
            'description': template.description, 'unified_job_template': template.id, template_key: template.id,
            'launch_type': job.launch_type, 'status': job.status, 'failed': job.status in FAILED,
            'started': timestamp(job.started), 'finished': timestamp(job.finished), 'canceled_on': timestamp(job.canceled_on),
            'elapsed': job.elapsed, 'job_explanation': job.job_explanation, 'execution_node': 'stand-in' if job.started else '',
            'launched_by': {'id': 1, 'name': self.username or 'admin', 'type': 'user', 'url': f'{prefix}/v2/users/1/'},
            'extra_vars': json.dumps(job.extra_vars), 'artifacts': job.artifacts, 'limit': job.limit, 'allow_simultaneous': template.allow_simultaneous,
            'organization': template.organization_id, 'work_unit_id': None,
            'result_traceback': job.result_traceback, 'event_processing_finished': job.status in TERMINAL,
            'job_args': '', 'job_cwd': '', 'job_env': {},
        }
        if job.kind == 'job':
            data.update(job_type='run', playbook=template.playbook, inventory=1, project=1, forks=0, verbosity=0)
        else:
            data.update(is_sliced_job=False, inventory=None, webhook_service='', allow_simultaneous=template.allow_simultaneous)
        if not detail:
            for field in LIST_EXCLUDED:
                data.pop(field, None)
        return data

    _JOB_FIELDS = {
        'id': lambda j: j.id, 'status': lambda j: j.status, 'name': lambda j: j.template.name, 'failed': lambda j: j.status in FAILED,
        'job_template': lambda j: j.template.id if j.kind == 'job' else None,
        'workflow_job_template': lambda j: j.template.id if j.kind == 'workflow_job' else None,
        'unified_job_template': lambda j: j.template.id, 'launch_type': lambda j: j.launch_type,
    }

    @staticmethod
    def _ordered(jobs: list, request: web.Request) -> list:
        order = request.rel_url.query.get('order_by', 'id')
        return sorted(jobs, key=lambda j: j.id, reverse=order.startswith('-'))

    def _job(self, request: web.Request) -> Job:
        kind = JOB_ENDPOINTS[request.path[len(self._prefix(request)) + 4:].split('/', 1)[0]]
        job = self.store.jobs.get(int(request.match_info['id']))
        if job is None or job.kind != kind:
            raise web.HTTPNotFound()
        return job

    async def job_list(self, request: web.Request) -> web.Response:
        """``jobs/`` or ``workflow_jobs/`` with AWX filters (``id__in``, ``status__in``, ``job_template``, ...)."""
        kind = JOB_ENDPOINTS[request.path[len(self._prefix(request)) + 4:].split('/', 1)[0]]
        prefix = self._prefix(request)
        with self.store.lock:
            jobs = [j for j in self.store.jobs.values() if j.kind == kind]
            jobs = self._filter(jobs, request.rel_url.query, self._JOB_FIELDS)
            return self._page(request, self._ordered(jobs, request), lambda j: self.render_job(j, prefix, detail=False))

    async def job_detail(self, request: web.Request) -> web.Response:
        """One job, with result_traceback and event_processing_finished."""
        with self.store.lock:
            return web.json_response(self.render_job(self._job(request), self._prefix(request), detail=True))

    async def job_delete(self, request: web.Request) -> web.Response:
        """Purge a finished job (403 while it is active, as AWX answers)."""
        with self.store.lock:
            job = self._job(request)
            try:
                self.store.delete(job)
            except PermissionError as exc:
                return self._error(403, str(exc))
        return web.Response(status=204)

    async def cancel_info(self, request: web.Request) -> web.Response:
        """``GET .../cancel/``: ``can_cancel`` (awx.awx job_cancel reads it first)."""
        with self.store.lock:
            job = self._job(request)
            return web.json_response({'can_cancel': job.status in ACTIVE})

    async def cancel(self, request: web.Request) -> web.Response:
        """``POST .../cancel/``: 202, or 405 when the job has already finished."""
        with self.store.lock:
            job = self._job(request)
            if not self.store.cancel(job):
                return self._error(405, 'Method "POST" not allowed.')
        return web.Response(status=202)

    async def stdout(self, request: web.Request) -> web.Response:
        """``jobs/<id>/stdout/?format=txt`` (also ``json``: ``{range, content}``)."""
        with self.store.lock:
            job = self._job(request)
        text = job.stdout()
        if request.rel_url.query.get('format', 'txt') == 'json':
            return web.json_response({'range': {'start': 0, 'end': len(text.splitlines()), 'absolute_end': len(text.splitlines())}, 'content': text})
        return web.Response(text=text, content_type='text/plain')

    async def workflow_nodes(self, request: web.Request) -> web.Response:
        """The nodes of a workflow job, each with the job it launched (null until then)."""
        prefix = self._prefix(request)
        with self.store.lock:
            job = self._job(request)
            nodes = []
            for index, name in enumerate(job.template.nodes):
                child = job.children[index] if index < len(job.children) else None
                nodes.append({'id': index + 1, 'type': 'workflow_job_node', 'identifier': name, 'workflow_job': job.id,
                              'job': child.id if child else None,
                              'summary_fields': {'job': {'id': child.id, 'name': child.template.name, 'status': child.status,
                                                         'failed': child.status in FAILED, 'type': 'job'} if child else None}})
            return self._page(request, nodes, lambda n: dict(n, url=f'{prefix}/v2/workflow_job_nodes/{n["id"]}/'))
