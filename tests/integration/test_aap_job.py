"""The aap_job module, awx.awx's job modules and ansible-rulebook's run_job_template against the controller stand-in."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.stack.controller.testing import ORGANIZATION, compute_instance, controller_fixture

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = 'cloudkit-create-compute-instance'
INSTANCE = compute_instance()
TEMPLATES = [
    {'name': TEMPLATE, 'organization': ORGANIZATION, 'playbook': 'aap_target.yml'},
    {'name': 'cloudkit-second', 'organization': ORGANIZATION, 'playbook': 'aap_target.yml'},
    {'name': 'cloudkit-fail', 'organization': ORGANIZATION, 'playbook': 'aap_target.yml', 'extra_vars': {'fail_job': True}},
    {'name': 'cloudkit-workflow', 'organization': ORGANIZATION, 'type': 'workflow', 'nodes': [TEMPLATE, 'cloudkit-second']},
] + [{'name': 'cloudkit-paged', 'organization': f'org-{number}', 'playbook': 'aap_target.yml'} for number in range(1, 7)]

# Page size 2: the six cloudkit-paged templates span three pages, org-6's on the last.
controller = controller_fixture(TEMPLATES, page_size=2, waiting_delay=0.05)


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def run_playbook(playbook: str, server, **env) -> subprocess.CompletedProcess:
    """ansible-playbook on tests/integration/playbooks/<playbook>, connected to the stand-in through the environment."""
    environment = dict(os.environ)
    environment.update(
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / '.build'), ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0',
        CONTROLLER_HOST=server.gateway_url, CONTROLLER_OAUTH_TOKEN=server.token, AAP_BARE_HOST=server.url,
        TEST_INSTANCE=json.dumps(INSTANCE),
    )
    environment.update(env)
    command = [_bin('ansible-playbook'), str(ROOT / 'tests' / 'integration' / 'playbooks' / playbook)]
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300, check=False)


def _jobs_of(server, template: str) -> list[dict]:
    return [job for job in server.jobs() if job['summary_fields']['unified_job_template']['name'] == template]


def test_aap_job_module(controller):
    """Launch, wait, check mode, found, cancel (and 405), failure, workflow, pagination, 404 and 401."""
    before = len(controller.requests())
    result = run_playbook('aap_job.yml', controller)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert controller.token not in result.stdout + result.stderr
    assert controller.wait_idle(60)
    requests = [path for _method, path in controller.requests()[before:]]
    # The name lookup followed `next` to page 3, where org-6's template is.
    assert '/api/controller/v2/job_templates/?name=cloudkit-paged&page=3' in requests
    canceled = [job for job in _jobs_of(controller, TEMPLATE) if job['status'] == 'canceled']
    assert len(canceled) == 1 and canceled[0]['history'][-2:] == ['running', 'canceled']
    # Every launched job carried the instance, in the envelope the playbook chose.
    launched = _jobs_of(controller, TEMPLATE)
    assert {json.loads(job['extra_vars']).get('sleep') for job in launched} >= {60, 1}
    workflow = _jobs_of(controller, 'cloudkit-workflow')[0]
    assert [controller.job(child)['name'] for child in workflow['children']] == [TEMPLATE, 'cloudkit-second']


def test_awx_collection_modules(controller):
    """awx.awx job_launch, job_wait and job_cancel work unchanged against the stand-in (bare-host form)."""
    result = run_playbook('aap_awx.yml', controller, CONTROLLER_HOST=controller.url)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert controller.wait_idle(60)


def test_rulebook_run_job_template(controller, tmp_path):
    """ansible-rulebook 1.3's run_job_template launches the template and sees it finish (its artifacts come back),
    then its run_workflow_template runs a workflow to the end."""
    rulebook = [{
        'name': 'Provision through the controller stand-in',
        'hosts': 'all',
        'execution_strategy': 'sequential',
        'sources': [{'eda.builtin.generic': {'payload': [{'payload': INSTANCE}]}}],
        'rules': [
            {'name': 'Provision', 'condition': 'event.payload.kind == "ComputeInstance"',
             'actions': [{'run_job_template': {'name': TEMPLATE, 'organization': ORGANIZATION, 'post_events': True}}]},
            # The job's set_stats come back as an event only once the rulebook saw the job successful.
            {'name': 'Job finished', 'condition': f'event.provisioned_uid == "{INSTANCE["metadata"]["uid"]}"',
             'actions': [{'debug': {'msg': 'provisioned by job {{ event.provisioned_by_job }}'}},
                         # Sequential: shutdown runs only once the workflow job is finished.
                         {'run_workflow_template': {'name': 'cloudkit-workflow', 'organization': ORGANIZATION}},
                         {'shutdown': {}}]},
        ],
    }]
    (tmp_path / 'rulebook.yml').write_text(yaml.safe_dump(rulebook))
    (tmp_path / 'inventory.yml').write_text(yaml.safe_dump({'all': {'hosts': {'localhost': {'ansible_connection': 'local'}}}}))
    before = {job['id'] for job in controller.jobs()}
    environment = dict(os.environ, EDA_JOB_TEMPLATE_REFRESH_DELAY='0.3', ANSIBLE_COLLECTIONS_PATH=str(ROOT / '.build'))
    environment['PATH'] = os.pathsep.join([str(Path(sys.executable).parent), environment.get('PATH', '')])
    command = [_bin('ansible-rulebook'), '--rulebook', str(tmp_path / 'rulebook.yml'), '--inventory', str(tmp_path / 'inventory.yml'),
               '--controller-url', controller.gateway_url, '--controller-token', controller.token, '--controller-ssl-verify', 'no',
               '--print-events']
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    new = [job for job in controller.jobs() if job['id'] not in before and job['launch_type'] == 'manual']
    assert [(job['type'], job['name'], job['status']) for job in new] == [
        ('job', TEMPLATE, 'successful'), ('workflow_job', 'cloudkit-workflow', 'successful')]
    assert f'provisioned by job {new[0]["id"]}' in output
    extra_vars = json.loads(new[0]['extra_vars'])
    assert extra_vars['ansible_eda']['event']['payload']['metadata']['uid'] == INSTANCE['metadata']['uid']
    # Gateway form: ansible-rulebook built every URL under /api/controller/v2/.
    paths = [path for _method, path in controller.requests()]
    assert '/api/controller/v2/config/' in paths
    assert any(path.startswith('/api/controller/v2/unified_job_templates/?name=') for path in paths)
    assert any(path.startswith(f'/api/controller/v2/jobs/?id__in={new[0]["id"]}') for path in paths)
    assert any(path.startswith(f'/api/controller/v2/workflow_jobs/?id__in={new[1]["id"]}') for path in paths)
