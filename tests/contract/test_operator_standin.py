"""The cloudkit operator stand-in (tests/stack/operator) against the kubeapi stand-in, with a fake EDA webhook receiver and a fake
AAP controller written here (aiohttp servers that record what they receive). Skipped on a real cluster, where the real operator
may be running."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from aiohttp import web
from kubernetes import client

from tests.conftest import ROOT
from tests.contract.helpers import CI, VERSION
from tests.stack.seed import desired_config_version
from tests.stack.operator import Operator, map_aap_status

GROUP = 'cloudkit.openshift.io'
OSAC = 'osac.openshift.io'
TOKEN = 'aap-test-token'
PROVISION_TEMPLATE = 'innabox-create-compute-instance'
DEPROVISION_TEMPLATE = 'innabox-delete-compute-instance'
TERMINAL = ('successful', 'failed', 'error', 'canceled')


# ----------------------------------------------------------------------------- small helpers
def wait_for(check, until=bool, timeout=10.0, what='condition'):
    """The first value of ``check()`` for which ``until(value)`` is true, polled until ``timeout``; fails the test otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if until(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out waiting for {what}')
        time.sleep(0.05)


def get_or_none(cis, name):
    """The instance, or None once it is gone."""
    try:
        return cis.get(name)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def status_of(cis, name):
    """The instance's status ({} before the operator wrote one)."""
    return cis.get(name).get('status') or {}


def annotate(cis, name, key, value):
    """Merge-patch one annotation (None removes it), as the Ansible side does."""
    return cis.patch(name, {'metadata': {'annotations': {key: value}}})


def mark_reconciled(cis, name):
    """Play the Ansible side after a successful provision: the annotation carries status.desiredConfigVersion."""
    live = wait_for(lambda: (cis.get(name).get('status') or {}).get('desiredConfigVersion'), what='desiredConfigVersion')
    annotate(cis, name, f'{cis.group}/reconciled-config-version', live)
    return live


def add_ansible_finalizer(cis, name):
    """Play the Ansible side: append its finalizer (JSON patch, other finalizers untouched)."""
    cis.patch(name, [{'op': 'add', 'path': '/metadata/finalizers/-', 'value': f'{cis.group}/computeinstance-aap'}],
              'application/json-patch+json')


def remove_ansible_finalizer(cis, name):
    """Play the Ansible side at the end of a delete: drop its finalizer (test + remove at its index)."""
    fin = f'{cis.group}/computeinstance-aap'
    pos = cis.get(name)['metadata']['finalizers'].index(fin)
    cis.patch(name, [{'op': 'test', 'path': f'/metadata/finalizers/{pos}', 'value': fin},
                     {'op': 'remove', 'path': f'/metadata/finalizers/{pos}'}], 'application/json-patch+json')


def create_tenant(api_client, namespace, name, group=GROUP, tenant_namespace='vms'):
    """A Tenant whose status.namespace is ``tenant_namespace``."""
    co = client.CustomObjectsApi(api_client)
    body = {'apiVersion': f'{group}/{VERSION}', 'kind': 'Tenant', 'metadata': {'name': name}, 'spec': {}}
    co.create_namespaced_custom_object(group, VERSION, namespace, 'tenants', body)
    co.patch_namespaced_custom_object_status(group, VERSION, namespace, 'tenants', name, {'status': {'namespace': tenant_namespace}})


def actions(operator, action, **match):
    """The operator's history entries of one action whose fields equal ``match``."""
    return [e for e in list(operator.history) if e['action'] == action and all(e.get(k) == v for k, v in match.items())]


# ----------------------------------------------------------------------------- fake HTTP servers
class AioServer:
    """An aiohttp application on a background thread, on a free port of 127.0.0.1."""

    def __init__(self, app: web.Application):
        self.app = app
        self.port = None
        self._loop = asyncio.new_event_loop()
        self._runner = None
        self._thread = threading.Thread(target=self._loop.run_forever, name='fake-http', daemon=True)

    @property
    def url(self):
        """http://127.0.0.1:port"""
        return f'http://127.0.0.1:{self.port}'

    async def _start(self):
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, '127.0.0.1', 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def start(self):
        """Listen; returns once the port is known."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self):
        """Close the listener and the loop."""
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


class FakeEDA(AioServer):
    """Records every POST (path, headers, JSON body); answers ``answer`` (200 by default)."""

    def __init__(self):
        self.received = []
        self.answer = 200
        app = web.Application()
        app.router.add_post('/{path:.*}', self._post)
        super().__init__(app)

    async def _post(self, request):
        self.received.append({'path': request.path, 'headers': dict(request.headers), 'body': await request.json()})
        return web.json_response({}, status=self.answer)

    def posts(self, path):
        """The bodies POSTed to ``path``."""
        return [r['body'] for r in list(self.received) if r['path'] == path]


class FakeAAP(AioServer):
    """The controller calls the operator makes, under /api/controller/v2/, with scripted job statuses.

    A job reports the statuses of its template's script one per poll (the last one repeats); ``finish()`` overrides that.
    Cancel: 405 once the job is terminal or when ``cancel_finishes`` is set (the job then turns successful), else 202 and canceled.
    """

    def __init__(self, token=TOKEN):
        self.token = token
        self.templates = {PROVISION_TEMPLATE: 11, DEPROVISION_TEMPLATE: 12}
        self.scripts = {PROVISION_TEMPLATE: ['running', 'successful'], DEPROVISION_TEMPLATE: ['running', 'successful']}
        self.cancel_finishes = False
        self.jobs = {}
        self.log = []
        self.auth = set()
        app = web.Application()
        base = '/api/controller/v2'
        app.router.add_get(base + '/job_templates/', self._templates)
        app.router.add_get(base + '/workflow_job_templates/', self._workflows)
        app.router.add_post(base + '/job_templates/{id}/launch/', self._launch)
        app.router.add_get(base + '/jobs/{id}/', self._job)
        app.router.add_post(base + '/jobs/{id}/cancel/', self._cancel)
        super().__init__(app)

    @property
    def base(self):
        """The controller base URL the operator is given."""
        return self.url + '/api/controller'

    def _authorized(self, request):
        self.auth.add(request.headers.get('Authorization'))
        return request.headers.get('Authorization') == f'Bearer {self.token}'

    async def _templates(self, request):
        if not self._authorized(request):
            return web.json_response({'detail': 'unauthorized'}, status=401)
        name = request.query.get('name')
        found = [{'id': tid, 'name': n, 'type': 'job_template'} for n, tid in self.templates.items() if n == name]
        return web.json_response({'count': len(found), 'results': found})

    async def _workflows(self, request):
        if not self._authorized(request):
            return web.json_response({'detail': 'unauthorized'}, status=401)
        return web.json_response({'count': 0, 'results': []})

    async def _launch(self, request):
        if not self._authorized(request):
            return web.json_response({'detail': 'unauthorized'}, status=401)
        template_id = int(request.match_info['id'])
        names = [n for n, tid in self.templates.items() if tid == template_id]
        if not names:
            return web.json_response({'detail': 'Not found.'}, status=404)
        job_id = 100 + len(self.jobs) + 1
        body = await request.json()
        self.jobs[job_id] = {'template': names[0], 'extra_vars': body.get('extra_vars'), 'status': 'pending', 'polls': 0, 'forced': None}
        self.log.append(('launch', names[0], job_id))
        return web.json_response({'job': job_id, 'id': job_id, 'status': 'pending'}, status=201)

    def _status(self, job):
        if job['forced']:
            return job['forced']
        script = self.scripts[job['template']]
        return script[min(job['polls'], len(script) - 1)]

    async def _job(self, request):
        if not self._authorized(request):
            return web.json_response({'detail': 'unauthorized'}, status=401)
        job_id = int(request.match_info['id'])
        job = self.jobs.get(job_id)
        if job is None:
            return web.json_response({'detail': 'Not found.'}, status=404)
        job['status'] = self._status(job)
        job['polls'] += 1
        self.log.append(('poll', job_id, job['status']))
        explanation = 'Job terminated due to error' if job['status'] in ('failed', 'error') else ''
        return web.json_response({'id': job_id, 'status': job['status'], 'failed': job['status'] in ('failed', 'error'),
                                  'job_explanation': explanation})

    async def _cancel(self, request):
        if not self._authorized(request):
            return web.json_response({'detail': 'unauthorized'}, status=401)
        job_id = int(request.match_info['id'])
        job = self.jobs[job_id]
        if job['status'] in TERMINAL or self.cancel_finishes:
            job['forced'] = job['forced'] or 'successful'
            self.log.append(('cancel', job_id, 405))
            return web.json_response({'detail': 'Method "POST" not allowed.'}, status=405)
        job['forced'] = 'canceled'
        self.log.append(('cancel', job_id, 202))
        return web.Response(status=202)

    def finish(self, job_id, status):
        """From now on the job reports ``status``."""
        self.jobs[job_id]['forced'] = status

    def launched(self, template):
        """Ids of the jobs launched from ``template``, oldest first."""
        return [e[2] for e in list(self.log) if e[0] == 'launch' and e[1] == template]


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture
def eda():
    """A fake EDA webhook receiver."""
    server = FakeEDA().start()
    yield server
    server.stop()


@pytest.fixture
def aap():
    """A fake AAP controller."""
    server = FakeAAP().start()
    yield server
    server.stop()


@pytest.fixture
def operators(kube, api_client, namespace):
    """Start operators on the test's namespace; stopped after the test, then every finalizer left there is dropped.

    Skips on a real cluster, where the real operator may be running."""
    kube.require_local('a real operator may be running there')
    started = []

    def make(**kwargs):
        kwargs.setdefault('namespace', namespace)
        kwargs.setdefault('poll_interval', 0.05)
        op = Operator(kube.kubeconfig, **kwargs).start()
        started.append(op)
        return op

    yield make
    for op in started:
        op.stop()
    for group in (GROUP, OSAC):
        cis = CI(api_client, namespace, group)
        for item in cis.list()['items']:
            if item['metadata'].get('finalizers'):
                cis.patch(item['metadata']['name'], {'metadata': {'finalizers': None}})


def eda_operator(operators, eda, **kwargs):
    """An EDA-mode operator posting to the fake receiver's /create and /delete."""
    return operators(mode='eda', create_webhook=eda.url + '/create', delete_webhook=eda.url + '/delete', **kwargs)


def aap_operator(operators, aap, **kwargs):
    """An AAP-Direct-mode operator on the fake controller."""
    return operators(mode='aap', aap_url=aap.base, aap_token=TOKEN, **kwargs)


# ----------------------------------------------------------------------------- pure functions
@pytest.mark.parametrize('aap_status,seed,later', [
    ('successful', 'Succeeded', 'Succeeded'), ('failed', 'Failed', 'Failed'), ('error', 'Failed', 'Failed'),
    ('canceled', 'Canceled', 'Canceled'), ('pending', 'Running', 'Pending'), ('waiting', 'Running', 'Waiting'),
    ('running', 'Running', 'Running'), ('new', 'Unknown', 'Unknown'), (None, 'Unknown', 'Unknown'),
])
def test_aap_status_mapping(aap_status, seed, later):
    assert map_aap_status(aap_status, 'seed') == seed
    assert map_aap_status(aap_status, 'later') == later


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match='mode'):
        Operator('kubeconfig', mode='webhook')
    with pytest.raises(ValueError, match='create_webhook'):
        Operator('kubeconfig', mode='eda')
    with pytest.raises(ValueError, match='aap_url'):
        Operator('kubeconfig', mode='aap')


# ----------------------------------------------------------------------------- status fields
def test_status_fields_finalizer_and_reconciled_copy(api_client, namespace, operators, eda):
    create_tenant(api_client, namespace, 'acme')
    cis = CI(api_client, namespace)
    body = {'apiVersion': f'{GROUP}/{VERSION}', 'kind': 'ComputeInstance',
            'metadata': {'name': 'vm1', 'finalizers': ['example.com/keep']},
            'spec': {'templateID': 'cloudkit.templates.ocp_virt_vm', 'templateParameters': '{"cpu_cores": 2}'}}
    cis.co.create_namespaced_custom_object(GROUP, VERSION, namespace, 'computeinstances', body)
    eda_operator(operators, eda)
    live = wait_for(lambda: cis.get('vm1'), lambda o: (o.get('status') or {}).get('tenantReference'), what='status')
    assert live['metadata']['finalizers'] == ['example.com/keep', f'{GROUP}/computeinstance']
    assert live['status']['desiredConfigVersion'] == desired_config_version(live['spec'])
    assert live['status']['tenantReference'] == {'name': 'acme', 'namespace': namespace}
    assert live['status']['phase'] == 'Progressing'
    assert 'reconciledConfigVersion' not in live['status']

    annotate(cis, 'vm1', f'{GROUP}/reconciled-config-version', 'abc123')
    wait_for(lambda: cis.get('vm1')['status'].get('reconciledConfigVersion') == 'abc123', what='reconciledConfigVersion copied')
    annotate(cis, 'vm1', f'{GROUP}/reconciled-config-version', None)
    wait_for(lambda: 'reconciledConfigVersion' not in cis.get('vm1')['status'], what='reconciledConfigVersion cleared')
    assert cis.get('vm1')['metadata']['finalizers'] == ['example.com/keep', f'{GROUP}/computeinstance']


def test_tenant_chosen_by_annotation_and_tenant_created_later(api_client, namespace, operators, eda):
    cis = CI(api_client, namespace)
    cis.create('lonely')
    eda_operator(operators, eda)
    wait_for(lambda: (cis.get('lonely').get('status') or {}).get('desiredConfigVersion'), what='status')
    assert 'tenantReference' not in status_of(cis, 'lonely')
    create_tenant(api_client, namespace, 'first')
    wait_for(lambda: status_of(cis, 'lonely').get('tenantReference') == {'name': 'first', 'namespace': namespace},
             what='tenantReference once a Tenant exists')
    create_tenant(api_client, namespace, 'second')
    body = {'apiVersion': f'{GROUP}/{VERSION}', 'kind': 'ComputeInstance',
            'metadata': {'name': 'chosen', 'annotations': {f'{GROUP}/tenant': 'second'}},
            'spec': {'templateID': 'cloudkit.templates.ocp_virt_vm'}}
    cis.co.create_namespaced_custom_object(GROUP, VERSION, namespace, 'computeinstances', body)
    wait_for(lambda: (cis.get('chosen').get('status') or {}).get('tenantReference') == {'name': 'second', 'namespace': namespace},
             what='tenantReference from the annotation')


# ----------------------------------------------------------------------------- EDA mode
def test_eda_create_posts_whole_object_resends_until_reconciled(api_client, namespace, operators, eda):
    cis = CI(api_client, namespace)
    op = eda_operator(operators, eda, resend_after=0.4, webhook_headers={'Authorization': 'Bearer stream-token'})
    created = cis.create('web', templateParameters='{"cpu_cores": 2}')
    posts = wait_for(lambda: eda.posts('/create') if len(eda.posts('/create')) >= 2 else None, what='a create POST and a re-send')
    first = posts[0]
    assert first['apiVersion'] == f'{GROUP}/{VERSION}' and first['kind'] == 'ComputeInstance'
    assert first['metadata']['name'] == 'web' and first['metadata']['uid'] == created['metadata']['uid']
    assert first['spec'] == created['spec']
    assert first['status']['desiredConfigVersion'] == desired_config_version(created['spec'])
    assert f'{GROUP}/computeinstance' in first['metadata']['finalizers']
    request = [r for r in eda.received if r['path'] == '/create'][0]
    assert request['headers']['Content-Type'] == 'application/json'
    assert request['headers']['Authorization'] == 'Bearer stream-token'
    assert all(e['status'] == 200 and e['sent'] for e in actions(op, 'webhook', kind='create'))

    version = mark_reconciled(cis, 'web')
    wait_for(lambda: status_of(cis, 'web').get('reconciledConfigVersion') == version, what='reconciled')
    settled = len(eda.posts('/create'))
    time.sleep(1.0)  # more than two resend periods
    assert len(eda.posts('/create')) == settled

    cis.patch('web', {'spec': {'templateParameters': '{"cpu_cores": 4}'}})
    new_version = desired_config_version(cis.get('web')['spec'])
    latest = wait_for(lambda: [p for p in eda.posts('/create') if p['status']['desiredConfigVersion'] == new_version],
                      what='a POST for the new spec')
    assert latest[0]['spec']['templateParameters'] == '{"cpu_cores": 4}'
    assert eda.posts('/delete') == []


def test_eda_failed_posts_are_retried(api_client, namespace, operators, eda):
    eda.answer = 503
    cis = CI(api_client, namespace)
    op = eda_operator(operators, eda, resend_after=30.0)
    cis.create('flaky')
    wait_for(lambda: len(eda.posts('/create')) >= 2, what='a retry after a 503')
    eda.answer = 202
    wait_for(lambda: actions(op, 'webhook', kind='create', status=202), what='a POST that went through')
    assert actions(op, 'webhook', kind='create', status=503, sent=False)


def test_eda_delete_waits_for_the_ansible_finalizer(api_client, namespace, operators, eda):
    cis = CI(api_client, namespace)
    op = eda_operator(operators, eda)
    cis.create('del')
    wait_for(lambda: eda.posts('/create'), what='create POST')
    add_ansible_finalizer(cis, 'del')
    mark_reconciled(cis, 'del')
    cis.delete('del')
    posts = wait_for(lambda: eda.posts('/delete'), what='delete POST')
    assert posts[0]['metadata']['name'] == 'del' and posts[0]['metadata'].get('deletionTimestamp')
    live = wait_for(lambda: cis.get('del'), lambda o: o['status'].get('phase') == 'Deleting', what='phase Deleting')
    assert live['metadata']['finalizers'] == [f'{GROUP}/computeinstance', f'{GROUP}/computeinstance-aap']
    time.sleep(0.5)
    assert len(eda.posts('/delete')) == 1
    assert get_or_none(cis, 'del') is not None
    remove_ansible_finalizer(cis, 'del')
    wait_for(lambda: get_or_none(cis, 'del') is None, what='the instance to go')
    assert actions(op, 'finalizer_removed', name='del', finalizer=f'{GROUP}/computeinstance')


def test_eda_delete_without_ansible_finalizer_sends_nothing(api_client, namespace, operators, eda):
    cis = CI(api_client, namespace)
    op = eda_operator(operators, eda)
    cis.create('bare')
    wait_for(lambda: f'{GROUP}/computeinstance' in (cis.get('bare')['metadata'].get('finalizers') or []), what='finalizer')
    cis.delete('bare')
    wait_for(lambda: get_or_none(cis, 'bare') is None, what='the instance to go')
    assert eda.posts('/delete') == []
    assert actions(op, 'finalizer_removed', name='bare')


@pytest.mark.parametrize('mode', ['eda', 'aap'])
def test_manual_instance_gets_status_but_nothing_is_sent(api_client, namespace, operators, eda, aap, mode):
    cis = CI(api_client, namespace)
    body = {'apiVersion': f'{GROUP}/{VERSION}', 'kind': 'ComputeInstance',
            'metadata': {'name': 'hands-off', 'annotations': {f'{GROUP}/management-state': 'manual'}},
            'spec': {'templateID': 'cloudkit.templates.ocp_virt_vm'}}
    cis.co.create_namespaced_custom_object(GROUP, VERSION, namespace, 'computeinstances', body)
    op = eda_operator(operators, eda, resend_after=0.2) if mode == 'eda' else aap_operator(operators, aap, resend_after=0.2)
    live = wait_for(lambda: cis.get('hands-off'), lambda o: (o.get('status') or {}).get('desiredConfigVersion'), what='status')
    assert live['metadata']['finalizers'] == [f'{GROUP}/computeinstance']
    time.sleep(0.5)
    cis.delete('hands-off')
    wait_for(lambda: get_or_none(cis, 'hands-off') is None, what='the instance to go')
    assert eda.received == [] and aap.jobs == {}
    assert not actions(op, 'webhook') and not actions(op, 'launch')


def tolerant(check):
    """``check`` with injected API errors counted as "not yet"."""
    def run():
        try:
            return check()
        except client.ApiException as exc:
            if exc.status in (409, 429, 500):
                return None
            raise
    return run


def test_eda_converges_through_api_faults(api_client, namespace, operators, eda, instrumented_api):
    cis = CI(api_client, namespace)
    names = ['f1', 'f2', 'f3']
    eda_operator(operators, eda)
    since = instrumented_api.write_log()[-1]['seq'] if instrumented_api.write_log() else 0
    # Reads and writes fail a quarter of the time (409/429/500) and watch streams are cut every half second.
    instrumented_api.faults.set(error_rate=0.25, error_codes=(409, 429, 500), cut_watches_after=0.5,
                                methods=('GET', 'PUT', 'PATCH'), path_regex=f'/namespaces/{namespace}/', seed=7)
    for name in names:
        cis.create(name)
    for name in names:
        wait_for(tolerant(lambda n=name: status_of(cis, n).get('desiredConfigVersion') and
                          [p for p in eda.posts('/create') if p['metadata']['name'] == n]), timeout=20, what=f'{name} status and POST')
    instrumented_api.faults.clear()
    refused = [w for w in instrumented_api.write_log(since) if w['namespace'] == namespace and w['status'] in (409, 429, 500)]
    assert refused, 'the fault switch refused none of the operator\'s writes'
    for name in names:
        assert [p['metadata']['name'] for p in eda.posts('/create')].count(name) == 1
        assert cis.get(name)['metadata']['finalizers'] == [f'{GROUP}/computeinstance']
        mark_reconciled(cis, name)
        cis.delete(name)
    for name in names:
        wait_for(lambda n=name: get_or_none(cis, n) is None, what=f'{name} to go')


# ----------------------------------------------------------------------------- AAP Direct
def test_aap_launch_envelope_records_and_relaunch(api_client, namespace, operators, aap):
    aap.scripts[PROVISION_TEMPLATE] = ['pending', 'running', 'successful']
    cis = CI(api_client, namespace)
    op = aap_operator(operators, aap, resend_after=0.3)
    cis.create('job')
    first = wait_for(lambda: aap.launched(PROVISION_TEMPLATE), what='a provision launch')[0]
    payload = aap.jobs[first]['extra_vars']['ansible_eda']['event']['payload']
    assert list(aap.jobs[first]['extra_vars']) == ['ansible_eda']
    assert payload['metadata']['name'] == 'job' and payload['spec']['templateID'] == 'cloudkit.templates.ocp_virt_vm'
    assert payload['status']['desiredConfigVersion'] == desired_config_version(payload['spec'])
    assert aap.auth == {f'Bearer {TOKEN}'}
    record = wait_for(lambda: status_of(cis, 'job').get('provisionJob'), lambda j: j and j.get('state') == 'Succeeded',
                      what='provisionJob Succeeded')
    assert record['id'] == str(first) and record['blockDeletionOnFailure'] is False
    # pending and running both map to Running in the seed variant: one state change.
    assert [e['state'] for e in actions(op, 'job_state', job_id=str(first))] == ['Succeeded']

    # Succeeded without the annotation: not done; launched again after resend_after.
    second = wait_for(lambda: aap.launched(PROVISION_TEMPLATE)[1:], what='a relaunch')[0]
    assert aap.jobs[second]['extra_vars']['ansible_eda']['event']['payload']['status']['desiredConfigVersion'] == payload['status'][
        'desiredConfigVersion']
    mark_reconciled(cis, 'job')
    expected = {'id': str(second), 'state': 'Succeeded', 'blockDeletionOnFailure': False, 'message': f'AAP job {second} successful'}
    wait_for(lambda: status_of(cis, 'job')['provisionJob'] == expected, what='second job recorded')
    launches = len(aap.launched(PROVISION_TEMPLATE))
    time.sleep(0.8)
    assert len(aap.launched(PROVISION_TEMPLATE)) == launches

    cis.patch('job', {'spec': {'templateParameters': '{"cpu_cores": 8}'}})
    third = wait_for(lambda: aap.launched(PROVISION_TEMPLATE)[launches:], what='a launch for the new spec')[0]
    assert aap.jobs[third]['extra_vars']['ansible_eda']['event']['payload']['spec']['templateParameters'] == '{"cpu_cores": 8}'


def test_aap_delete_during_provision_cancels_then_deprovisions(api_client, namespace, operators, aap):
    aap.scripts[PROVISION_TEMPLATE] = ['running']
    aap.scripts[DEPROVISION_TEMPLATE] = ['running']
    cis = CI(api_client, namespace)
    op = aap_operator(operators, aap)
    cis.create('busy')
    provision = wait_for(lambda: aap.launched(PROVISION_TEMPLATE), what='provision launch')[0]
    wait_for(lambda: (status_of(cis, 'busy').get('provisionJob') or {}).get('state') == 'Running', what='provision running')
    cis.delete('busy')
    deprovision = wait_for(lambda: aap.launched(DEPROVISION_TEMPLATE), what='deprovision launch')[0]
    order = [e for e in aap.log if e[0] in ('cancel', 'launch') or (e[0] == 'poll' and e[1] == provision and e[2] == 'canceled')]
    assert order[-3:] == [('cancel', provision, 202), ('poll', provision, 'canceled'), ('launch', DEPROVISION_TEMPLATE, deprovision)]
    payload = aap.jobs[deprovision]['extra_vars']['ansible_eda']['event']['payload']
    assert payload['metadata']['deletionTimestamp']
    status = wait_for(lambda: status_of(cis, 'busy'), lambda s: s.get('deprovisionJob'), what='deprovisionJob')
    assert status['provisionJob']['state'] == 'Canceled'
    assert status['deprovisionJob']['id'] == str(deprovision) and status['deprovisionJob']['blockDeletionOnFailure'] is True
    assert status['phase'] == 'Deleting'
    assert actions(op, 'launch', type='deprovision', block_deletion_on_failure=True)
    assert get_or_none(cis, 'busy') is not None
    aap.finish(deprovision, 'successful')
    wait_for(lambda: get_or_none(cis, 'busy') is None, what='the instance to go')


def test_aap_cancel_answered_405(api_client, namespace, operators, aap):
    aap.scripts[PROVISION_TEMPLATE] = ['running']
    aap.cancel_finishes = True
    cis = CI(api_client, namespace)
    op = aap_operator(operators, aap)
    cis.create('late')
    provision = wait_for(lambda: aap.launched(PROVISION_TEMPLATE), what='provision launch')[0]
    wait_for(lambda: (status_of(cis, 'late').get('provisionJob') or {}).get('state') == 'Running', what='provision running')
    cis.delete('late')
    wait_for(lambda: get_or_none(cis, 'late') is None, what='the instance to go')
    assert [e['status'] for e in actions(op, 'cancel', job_id=str(provision))] == [405]
    assert actions(op, 'cancel')[0]['already_finished'] is True
    assert len(aap.launched(DEPROVISION_TEMPLATE)) == 1


def test_aap_deprovision_waits_for_ansible_finalizer(api_client, namespace, operators, aap):
    cis = CI(api_client, namespace)
    aap_operator(operators, aap)
    cis.create('owned')
    wait_for(lambda: (status_of(cis, 'owned').get('provisionJob') or {}).get('state') == 'Succeeded', what='provisioned')
    add_ansible_finalizer(cis, 'owned')
    mark_reconciled(cis, 'owned')
    cis.delete('owned')
    wait_for(lambda: (status_of(cis, 'owned').get('deprovisionJob') or {}).get('state') == 'Succeeded', what='deprovision succeeded')
    time.sleep(0.3)
    assert f'{GROUP}/computeinstance' in cis.get('owned')['metadata']['finalizers']
    remove_ansible_finalizer(cis, 'owned')
    wait_for(lambda: get_or_none(cis, 'owned') is None, what='the instance to go')


def test_aap_failed_deprovision_keeps_the_finalizer(api_client, namespace, operators, aap):
    aap.scripts[DEPROVISION_TEMPLATE] = ['running', 'failed']
    cis = CI(api_client, namespace)
    op = aap_operator(operators, aap)
    cis.create('stuck')
    wait_for(lambda: (status_of(cis, 'stuck').get('provisionJob') or {}).get('state') == 'Succeeded', what='provisioned')
    mark_reconciled(cis, 'stuck')
    cis.delete('stuck')
    job = wait_for(lambda: status_of(cis, 'stuck').get('deprovisionJob'), lambda j: j and j['state'] == 'Failed', what='deprovision failed')
    assert job['blockDeletionOnFailure'] is True and 'error' in job['message']
    wait_for(lambda: actions(op, 'deletion_blocked', name='stuck'), what='the failure recorded')
    time.sleep(0.3)
    live = cis.get('stuck')
    assert live['metadata']['finalizers'] == [f'{GROUP}/computeinstance']
    assert len(aap.launched(DEPROVISION_TEMPLATE)) == 1
    assert not actions(op, 'finalizer_removed', name='stuck')


def test_aap_unknown_template_is_retried_not_fatal(api_client, namespace, operators, aap):
    cis = CI(api_client, namespace)
    op = aap_operator(operators, aap, provision_template='no-such-template')
    cis.create('orphan')
    failures = wait_for(lambda: actions(op, 'launch', name='orphan')[1:], what='a failed launch, retried')
    assert all(e['job_id'] is None and 'no-such-template' in e['error'] for e in failures)
    assert aap.jobs == {}


def test_aap_launches_once_through_api_faults(api_client, namespace, operators, aap, instrumented_api):
    aap.scripts[PROVISION_TEMPLATE] = ['running', 'running', 'successful']
    cis = CI(api_client, namespace)
    aap_operator(operators, aap)
    since = instrumented_api.write_log()[-1]['seq'] if instrumented_api.write_log() else 0
    instrumented_api.faults.set(error_rate=0.25, error_codes=(409, 429, 500), cut_watches_after=0.5,
                                methods=('GET', 'PUT', 'PATCH'), path_regex=f'/namespaces/{namespace}/', seed=3)
    cis.create('shaky')
    wait_for(tolerant(lambda: (status_of(cis, 'shaky').get('provisionJob') or {}).get('state') == 'Succeeded'), timeout=20,
             what='provision recorded as Succeeded')
    wait_for(tolerant(lambda: mark_reconciled(cis, 'shaky')), timeout=20, what='the annotation written')
    wait_for(tolerant(lambda: cis.delete('shaky')), timeout=20, what='the delete accepted')
    wait_for(tolerant(lambda: get_or_none(cis, 'shaky') is None), timeout=20, what='the instance to go')
    instrumented_api.faults.clear()
    assert [w for w in instrumented_api.write_log(since) if w['namespace'] == namespace and w['status'] in (409, 429, 500)]
    assert len(aap.launched(PROVISION_TEMPLATE)) == 1
    assert len(aap.launched(DEPROVISION_TEMPLATE)) == 1


# ----------------------------------------------------------------------------- later variant
def test_later_variant_osac_group(api_client, namespace, operators, aap):
    aap.scripts[PROVISION_TEMPLATE] = ['pending', 'waiting', 'running', 'successful']
    create_tenant(api_client, namespace, 'acme', group=OSAC)
    cis = CI(api_client, namespace, OSAC)
    op = aap_operator(operators, aap, api_group=OSAC, variant='later')
    cis.create('new')
    provision = wait_for(lambda: aap.launched(PROVISION_TEMPLATE), what='provision launch')[0]
    extra_vars = aap.jobs[provision]['extra_vars']
    assert list(extra_vars) == ['osac_job_vars']
    assert extra_vars['osac_job_vars']['resource']['apiVersion'] == f'{OSAC}/{VERSION}'
    status = wait_for(lambda: status_of(cis, 'new'), lambda s: (s.get('jobs') or [{}])[-1].get('state') == 'Succeeded', what='jobs[] Succeeded')
    assert [e['state'] for e in actions(op, 'job_state', job_id=str(provision))] == ['Waiting', 'Running', 'Succeeded']
    (job,) = status['jobs']
    assert job['jobID'] == str(provision) and job['type'] == 'provision' and job['blockDeletionOnFailure'] is False
    assert job['configVersion'] == status['desiredConfigVersion'] and job['timestamp'].endswith('Z')
    assert status['tenantReference'] == {'name': 'acme', 'namespace': namespace}
    assert 'provisionJob' not in status
    live = cis.get('new')
    assert live['metadata']['finalizers'] == [f'{OSAC}/computeinstance']
    mark_reconciled(cis, 'new')
    wait_for(lambda: status_of(cis, 'new').get('reconciledConfigVersion') == status['desiredConfigVersion'], what='reconciled')
    cis.delete('new')
    wait_for(lambda: get_or_none(cis, 'new') is None, what='the instance to go')
    (deprovision,) = aap.launched(DEPROVISION_TEMPLATE)
    assert 'deletionTimestamp' in aap.jobs[deprovision]['extra_vars']['osac_job_vars']['resource']['metadata']
    assert actions(op, 'launch', type='deprovision', block_deletion_on_failure=True, envelope='osac_job_vars')


def test_later_variant_eda_mode_on_osac(api_client, namespace, operators, eda):
    cis = CI(api_client, namespace, OSAC)
    eda_operator(operators, eda, api_group=OSAC, variant='later')
    cis.create('hook')
    post = wait_for(lambda: eda.posts('/create'), what='create POST')[0]
    assert post['apiVersion'] == f'{OSAC}/{VERSION}' and post['metadata']['finalizers'] == [f'{OSAC}/computeinstance']
    add_ansible_finalizer(cis, 'hook')
    cis.delete('hook')
    wait_for(lambda: eda.posts('/delete'), what='delete POST')
    remove_ansible_finalizer(cis, 'hook')
    wait_for(lambda: get_or_none(cis, 'hook') is None, what='the instance to go')


# ----------------------------------------------------------------------------- CLI
def test_cli_runs_until_sigterm(kube, api_client, namespace, eda):
    kube.require_local('a real operator may be running there')
    cis = CI(api_client, namespace)
    proc = subprocess.Popen([sys.executable, '-m', 'tests.stack.operator', '--kubeconfig', str(kube.kubeconfig), '--mode', 'eda',
                             '--namespace', namespace, '--create-webhook', eda.url + '/create', '--delete-webhook', eda.url + '/delete',
                             '--webhook-header', 'X-Token: t1'],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        assert b'operator stand-in running' in proc.stdout.readline()
        cis.create('cli')
        wait_for(lambda: eda.posts('/create'), what='create POST from the CLI')
        assert [r for r in eda.received if r['path'] == '/create'][0]['headers']['X-Token'] == 't1'
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        proc.stdout.close()
