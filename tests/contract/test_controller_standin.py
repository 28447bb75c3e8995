"""Contract tests of the controller stand-in (tests/stack/controller): the REST API behaves as AAP's does for our clients."""
from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.stack.controller import ControllerServer
from tests.stack.controller.model import kill_marked
from tests.stack.controller.testing import ORGANIZATION, PLAYBOOK_DIR, compute_instance, controller_fixture

ROOT = Path(__file__).resolve().parents[2]
TERMINAL = ('successful', 'failed', 'error', 'canceled')
TEMPLATES = [
    {'name': 'serial', 'organization': ORGANIZATION, 'playbook': 'aap_target.yml'},
    {'name': 'parallel', 'organization': ORGANIZATION, 'playbook': 'aap_target.yml', 'allow_simultaneous': True},
    {'name': 'failing', 'organization': ORGANIZATION, 'playbook': 'aap_target.yml', 'extra_vars': {'fail_job': True}},
    {'name': 'fixed-vars', 'organization': ORGANIZATION, 'playbook': 'aap_target.yml', 'ask_variables_on_launch': False},
    {'name': 'flow', 'organization': ORGANIZATION, 'type': 'workflow', 'nodes': ['serial', 'parallel']},
] + [{'name': 'paged', 'organization': f'org-{number}', 'playbook': 'aap_target.yml'} for number in range(1, 7)]

server = controller_fixture(TEMPLATES, page_size=2, waiting_delay=0.05, username='admin', password='s3cret')


def call(srv: ControllerServer, method: str, path: str, body=None, token: str | None = None, headers: dict | None = None,
         prefix: str = '/api') -> tuple[int, object]:
    """(status, decoded body) of one request; path is relative to <prefix>/v2/ unless it starts with /."""
    url = srv.url + (path if path.startswith('/') else f'{prefix}/v2/{path}')
    hdrs = {'Authorization': f'Bearer {srv.token if token is None else token}'} if token != '' else {}
    hdrs.update(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        hdrs['Content-Type'] = 'application/json'
    request = urllib.request.Request(url, data=data, headers=hdrs, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw, ctype = response.status, response.read(), response.headers.get('Content-Type', '')
    except urllib.error.HTTPError as exc:
        status, raw, ctype = exc.code, exc.read(), exc.headers.get('Content-Type', '')
    if 'json' in ctype and raw:
        return status, json.loads(raw)
    return status, raw.decode()


def template_id(srv: ControllerServer, name: str, organization: str = ORGANIZATION) -> int:
    """Id of a template by name and organization."""
    return next(t.id for t in srv.templates() if t.name == name and t.organization == organization)


def launch(srv: ControllerServer, name: str, extra_vars: dict | None = None, prefix: str = '/api') -> dict:
    """POST .../launch/ and return the 201 body."""
    kind = 'workflow_job_templates' if name == 'flow' else 'job_templates'
    status, body = call(srv, 'POST', f'{kind}/{template_id(srv, name)}/launch/', {'extra_vars': extra_vars or {}}, prefix=prefix)
    assert status == 201, body
    return body


def test_launch_runs_the_playbook_through_every_status(server):
    """pending → waiting → running → successful; extra vars kept as a JSON string; times and summary fields set."""
    instance = compute_instance()
    body = launch(server, 'serial', {'ansible_eda': {'event': {'payload': instance}}})
    assert body['status'] == 'pending' and body['job'] == body['id'] and body['ignored_fields'] == {}
    assert body['url'] == f'/api/v2/jobs/{body["id"]}/'
    server.wait_status(body['id'], 'successful')
    job = server.job(body['id'])
    # aap_target.yml asserts JOB_ID == awx_job_id == tower_job_id: success proves the job got them.
    assert job['history'] == ['pending', 'waiting', 'running', 'successful']
    status, detail = call(server, 'GET', f'jobs/{body["id"]}/')
    assert status == 200
    assert json.loads(detail['extra_vars']) == {'ansible_eda': {'event': {'payload': instance}}}
    assert detail['started'] and detail['finished'] and detail['elapsed'] > 0 and detail['failed'] is False
    assert detail['summary_fields']['job_template']['name'] == 'serial'
    assert detail['summary_fields']['organization']['name'] == ORGANIZATION
    assert detail['artifacts'] == {'provisioned_uid': instance['metadata']['uid'], 'provisioned_by_job': body['id']}
    assert detail['result_traceback'] == '' and detail['event_processing_finished'] is True
    status, text = call(server, 'GET', f'jobs/{body["id"]}/stdout/?format=txt')
    assert status == 200 and 'PLAY RECAP' in text


def test_both_prefixes_and_named_urls(server):
    """/api/controller/v2/ answers like /api/v2/, with URLs under the prefix used; templates also by name++organization."""
    status, page = call(server, 'GET', 'job_templates/?name=serial', prefix='/api/controller')
    assert status == 200 and page['count'] == 1
    assert page['results'][0]['related']['launch'] == f'/api/controller/v2/job_templates/{template_id(server, "serial")}/launch/'
    status, body = call(server, 'POST', f'job_templates/serial++{ORGANIZATION}/launch/', {}, prefix='/api/controller')
    assert status == 201 and body['url'] == f'/api/controller/v2/jobs/{body["id"]}/'
    server.wait_status(body['id'], 'successful')
    status, config = call(server, 'GET', 'config/', prefix='/api/controller')
    assert status == 200 and config['version']


def test_cancel_stops_the_process_and_a_second_cancel_is_405(server):
    """POST cancel/ on a running job: 202, the process is stopped, status canceled; then can_cancel false and 405."""
    body = launch(server, 'parallel', {'sleep': 60})
    server.wait_status(body['id'], 'running')
    assert call(server, 'GET', f'jobs/{body["id"]}/cancel/') == (200, {'can_cancel': True})
    status, _body = call(server, 'POST', f'jobs/{body["id"]}/cancel/', {})
    assert status == 202
    assert server.wait_status(body['id'], TERMINAL) == 'canceled'
    job = server.job(body['id'])
    assert job['history'][-2:] == ['running', 'canceled'] and job['failed'] is True and job['canceled_on']
    # Nothing of the job survives it (ansible's workers run in sessions of their own).
    assert kill_marked(server.work_dir / f'job_{body["id"]}') == []
    assert call(server, 'GET', f'jobs/{body["id"]}/cancel/') == (200, {'can_cancel': False})
    status, error = call(server, 'POST', f'jobs/{body["id"]}/cancel/', {})
    assert status == 405 and 'not allowed' in error['detail']


def test_allow_simultaneous_false_queues_the_second_launch(server):
    """A second launch of a serial template stays pending until the first is done, then runs."""
    first = launch(server, 'serial', {'sleep': 60})
    second = launch(server, 'serial')
    server.wait_status(first['id'], 'running')
    status, listed = call(server, 'GET', f'jobs/?id__in={first["id"]},{second["id"]}')
    assert status == 200
    assert {job['id']: job['status'] for job in listed['results']} == {first['id']: 'running', second['id']: 'pending'}
    call(server, 'POST', f'jobs/{first["id"]}/cancel/', {})
    assert server.wait_status(second['id'], TERMINAL) == 'successful'
    assert server.job(second['id'])['history'] == ['pending', 'waiting', 'running', 'successful']
    assert server.job(second['id'])['started'] >= server.job(first['id'])['finished']


def test_allow_simultaneous_true_runs_launches_together(server):
    """Two launches of a template that allows it are running at the same time."""
    jobs = [launch(server, 'parallel', {'sleep': 60}) for _number in range(2)]
    for job in jobs:
        server.wait_status(job['id'], 'running')
    status, listed = call(server, 'GET', f'job_templates/{template_id(server, "parallel")}/jobs/?status__in=pending,waiting,running')
    assert status == 200 and {job['id'] for job in listed['results']} >= {job['id'] for job in jobs}
    for job in jobs:
        assert call(server, 'POST', f'jobs/{job["id"]}/cancel/', {})[0] == 202
    for job in jobs:
        assert server.wait_status(job['id'], TERMINAL) == 'canceled'


def test_pagination_over_three_pages(server):
    """Six templates of one name, page size 2: three pages linked by next, then 404 past the end."""
    ids = []
    path = 'unified_job_templates/?name=paged'
    pages = 0
    while path:
        status, page = call(server, 'GET', path)
        assert status == 200 and page['count'] == 6
        ids += [item['id'] for item in page['results']]
        assert all(item['type'] == 'job_template' and item['related']['launch'] for item in page['results'])
        path = page['next']
        pages += 1
    assert pages == 3 and len(set(ids)) == 6
    assert page['previous'] == '/api/v2/unified_job_templates/?name=paged&page=2'
    assert call(server, 'GET', 'unified_job_templates/?name=paged&page=4')[0] == 404


def test_failed_job_has_a_traceback_in_detail_only(server):
    """A failing playbook: status failed, result_traceback in the detail view, left out of lists as AWX does."""
    body = launch(server, 'failing', {'compute_instance': compute_instance()})
    assert server.wait_status(body['id'], TERMINAL) == 'failed'
    status, detail = call(server, 'GET', f'jobs/{body["id"]}/')
    assert status == 200 and detail['failed'] is True
    assert 'failing on purpose for vm1' in detail['result_traceback']
    status, listed = call(server, 'GET', f'jobs/?id={body["id"]}')
    assert listed['count'] == 1 and 'result_traceback' not in listed['results'][0]


def test_variables_not_prompted_are_ignored(server):
    """extra_vars on a template that does not ask for them: launched without them, reported in ignored_fields."""
    body = launch(server, 'fixed-vars', {'x': 1})
    assert body['ignored_fields'] == {'extra_vars': {'x': 1}}
    assert json.loads(body['extra_vars']) == {}
    server.wait_status(body['id'], TERMINAL)


def test_workflow_runs_its_nodes_in_sequence(server):
    """A workflow job launches one job per node, in order, with the workflow's extra vars; it ends successful."""
    body = launch(server, 'flow', {'compute_instance': compute_instance()})
    assert body['workflow_job'] == body['id'] and body['url'] == f'/api/v2/workflow_jobs/{body["id"]}/'
    assert server.wait_status(body['id'], TERMINAL) == 'successful'
    workflow = server.job(body['id'])
    children = [server.job(child) for child in workflow['children']]
    assert [child['name'] for child in children] == ['serial', 'parallel']
    assert all(child['launch_type'] == 'workflow' and child['status'] == 'successful' for child in children)
    assert children[0]['finished'] <= children[1]['started']
    assert json.loads(children[1]['extra_vars'])['compute_instance']['metadata']['name'] == 'vm1'
    status, nodes = call(server, 'GET', f'workflow_jobs/{body["id"]}/workflow_nodes/')
    assert status == 200 and [node['job'] for node in nodes['results']] == workflow['children'][:2]
    assert call(server, 'GET', f'jobs/{body["id"]}/')[0] == 404


def test_authentication(server):
    """401 without credentials or with a wrong token; basic auth for the configured user works."""
    status, body = call(server, 'GET', 'jobs/', token='')
    assert status == 401 and body['detail'] == 'Authentication credentials were not provided.'
    status, body = call(server, 'GET', 'jobs/', token='wrong')
    assert status == 401 and body['detail'] == 'Invalid token.'
    basic = base64.b64encode(b'admin:s3cret').decode()
    assert call(server, 'GET', 'jobs/', token='', headers={'Authorization': f'Basic {basic}'})[0] == 200
    wrong = base64.b64encode(b'admin:nope').decode()
    assert call(server, 'GET', 'jobs/', token='', headers={'Authorization': f'Basic {wrong}'})[0] == 401


def test_purged_job_is_404_and_active_job_cannot_be_deleted(server):
    """DELETE a finished job: 204, then 404; an active one: 403."""
    done = launch(server, 'parallel')
    server.wait_status(done['id'], TERMINAL)
    assert call(server, 'DELETE', f'jobs/{done["id"]}/')[0] == 204
    assert call(server, 'GET', f'jobs/{done["id"]}/')[0] == 404
    assert call(server, 'POST', f'jobs/{done["id"]}/cancel/', {})[0] == 404
    running = launch(server, 'parallel', {'sleep': 60})
    server.wait_status(running['id'], 'running')
    assert call(server, 'DELETE', f'jobs/{running["id"]}/')[0] == 403
    call(server, 'POST', f'jobs/{running["id"]}/cancel/', {})
    server.wait_status(running['id'], TERMINAL)


def test_job_ids_are_one_global_counter(server):
    """Jobs and workflow jobs share one id counter, as AAP's unified jobs do."""
    job = launch(server, 'parallel')
    workflow = launch(server, 'flow')
    assert workflow['id'] == job['id'] + 1
    assert server.wait_status(workflow['id'], TERMINAL) == 'successful'
    assert all(child > workflow['id'] for child in server.job(workflow['id'])['children'])
    assert call(server, 'GET', f'workflow_jobs/{job["id"]}/')[0] == 404


def test_cli_serves_and_cancels_running_jobs_on_sigterm(tmp_path):
    """python -m tests.stack.controller prints its URL, serves, and on SIGTERM cancels the running job and exits 0."""
    templates = tmp_path / 'templates.yml'
    templates.write_text(yaml.safe_dump([{'name': 'slow', 'organization': ORGANIZATION, 'playbook': 'aap_target.yml'}]))
    work = tmp_path / 'work'
    process = subprocess.Popen([sys.executable, '-m', 'tests.stack.controller', '--port', '0', '--templates', str(templates),
                                '--project-dir', str(PLAYBOOK_DIR), '--token', 'cli-token', '--work-dir', str(work)],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        url = process.stdout.readline().strip()
        assert url.startswith('http://127.0.0.1:')
        request = urllib.request.Request(url + '/api/v2/job_templates/1/launch/', data=json.dumps({'extra_vars': {'sleep': 60}}).encode(),
                                         headers={'Authorization': 'Bearer cli-token', 'Content-Type': 'application/json'}, method='POST')
        with urllib.request.urlopen(request, timeout=30) as response:
            job = json.loads(response.read())
        stdout = work / f'job_{job["id"]}' / 'artifacts' / 'run' / 'stdout'
        # The sleeping task is in the output once the job really runs.
        deadline = time.monotonic() + 60
        while not (stdout.exists() and 'Work for a while' in stdout.read_text()):
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read() if process.poll() is not None else 'no job output'
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # Killed mid-task: the play never reached its recap.
    assert 'PLAY RECAP' not in stdout.read_text()


@pytest.mark.parametrize('spec, message', [
    ({'name': 'x', 'organization': 'o'}, 'playbook is required'),
    ({'name': 'x', 'organization': 'o', 'type': 'workflow'}, 'nodes'),
    ({'name': 'x', 'organization': 'o', 'playbook': 'p.yml', 'colour': 'red'}, 'unknown field'),
])
def test_bad_templates_are_refused(spec, message):
    """Template files are validated when loaded."""
    with pytest.raises(ValueError, match=message):
        ControllerServer(templates=[spec])
