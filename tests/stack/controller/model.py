"""Templates and jobs of the controller stand-in: AAP's task-manager rules, and real runs with ansible-runner.

Every job runs on its own thread. State lives in one ``Store`` guarded by one lock, so the HTTP handlers (on the
aiohttp loop) and the job threads see the same jobs; handlers only ever hold the lock briefly.
"""
from __future__ import annotations

import itertools
import json
import os
import signal
import sys
import threading
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import ansible_runner
import yaml

ACTIVE = ('pending', 'waiting', 'running')
TERMINAL = ('successful', 'failed', 'error', 'canceled')
# AWX sets `failed` for these three (models/unified_jobs.py); awx.awx job_wait fails on it.
FAILED = ('failed', 'error', 'canceled')
TEMPLATE_FIELDS = ('name', 'organization', 'type', 'playbook', 'allow_simultaneous', 'ask_variables_on_launch', 'extra_vars',
                   'environment', 'nodes', 'description', 'inventory', 'ask_limit_on_launch', 'ask_inventory_on_launch',
                   'ask_labels_on_launch')
LOCAL_INVENTORY = {'all': {'hosts': {'localhost': {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable}}}}
# ansible-runner puts the playbook's output here, under the job's private data dir.
ARTIFACT_IDENT = 'run'
TRACEBACK_LINES = 40
# Environment variable that marks every process of one job, so a cancel can find them all.
JOB_MARKER = 'CONTROLLER_STAND_IN_JOB'


def kill_marked(private_dir) -> list[int]:
    """SIGKILL every process whose environment has JOB_MARKER=private_dir (Linux /proc); returns their pids."""
    needle = f'{JOB_MARKER}={private_dir}'.encode() + b'\0'
    killed = []
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / 'environ').read_bytes():
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
        except OSError:  # gone already, or not ours to read
            continue
    return killed


def timestamp(epoch: float | None) -> str | None:
    """AAP's timestamp format (UTC, microseconds, Z)."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def parse_extra_vars(value, field: str = 'extra_vars') -> dict:
    """Extra vars as AAP accepts them: a mapping, or a JSON or YAML string of one (empty means none)."""
    if value is None or value == '':
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError as exc:
                raise ValueError(f'{field}: neither JSON nor YAML: {exc}') from exc
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f'{field} must be a mapping, got {type(value).__name__}')
    return value


class Template:
    """A job template (``type: job``, runs ``playbook``) or a workflow job template (``type: workflow``, runs ``nodes``)."""

    def __init__(self, template_id: int, organization_id: int, spec: dict):
        unknown = sorted(set(spec) - set(TEMPLATE_FIELDS))
        if unknown:
            raise ValueError(f'template {spec.get("name")!r}: unknown field(s) {", ".join(unknown)}')
        if not spec.get('name') or not spec.get('organization'):
            raise ValueError(f'template {spec!r}: name and organization are required')
        self.id = template_id
        self.name = str(spec['name'])
        self.organization = str(spec['organization'])
        self.organization_id = organization_id
        self.kind = spec.get('type', 'job')
        if self.kind not in ('job', 'workflow'):
            raise ValueError(f'template {self.name!r}: type must be job or workflow, got {self.kind!r}')
        self.playbook = spec.get('playbook')
        self.nodes = list(spec.get('nodes') or [])
        if self.kind == 'job' and not self.playbook:
            raise ValueError(f'job template {self.name!r}: playbook is required')
        if self.kind == 'workflow' and not self.nodes:
            raise ValueError(f'workflow template {self.name!r}: nodes (job template names) are required')
        self.description = spec.get('description', '')
        self.allow_simultaneous = bool(spec.get('allow_simultaneous', False))
        self.ask_variables_on_launch = bool(spec.get('ask_variables_on_launch', True))
        self.ask_limit_on_launch = bool(spec.get('ask_limit_on_launch', False))
        self.ask_inventory_on_launch = bool(spec.get('ask_inventory_on_launch', False))
        self.ask_labels_on_launch = bool(spec.get('ask_labels_on_launch', False))
        self.extra_vars = parse_extra_vars(spec.get('extra_vars'), f'template {self.name!r} extra_vars')
        self.environment = {str(k): str(v) for k, v in (spec.get('environment') or {}).items()}
        self.inventory = spec.get('inventory') or LOCAL_INVENTORY
        self.created = time.time()

    @property
    def unified_type(self) -> str:
        """``job_template`` or ``workflow_job_template`` (the ``type`` field of the API)."""
        return 'job_template' if self.kind == 'job' else 'workflow_job_template'

    @property
    def job_kind(self) -> str:
        """The kind of job it launches: ``job`` or ``workflow_job``."""
        return 'job' if self.kind == 'job' else 'workflow_job'


class Job:
    """One launch of a template; ``history`` records every status it went through."""

    def __init__(self, job_id: int, template: Template, extra_vars: dict, launch_type: str, parent: Job | None, limit: str):
        self.id = job_id
        self.template = template
        self.kind = template.job_kind
        self.extra_vars = extra_vars
        self.launch_type = launch_type
        self.parent = parent
        self.limit = limit
        self.status = 'pending'
        self.history = ['pending']
        self.created = time.time()
        self.modified = self.created
        self.started: float | None = None
        self.finished: float | None = None
        self.canceled_on: float | None = None
        self.job_explanation = ''
        self.result_traceback = ''
        self.rc: int | None = None
        self.artifacts: dict = {}
        self.children: list[Job] = []
        self.private_dir: Path | None = None
        self.cancel_requested = threading.Event()
        self.done = threading.Event()
        self.thread: threading.Thread | None = None

    @property
    def elapsed(self) -> float:
        """Seconds from start to finish; 0 until finished, as AAP reports it."""
        if self.started is None or self.finished is None:
            return 0.0
        return round(self.finished - self.started, 3)

    @property
    def stdout_path(self) -> Path | None:
        """The ansible-playbook output of a job (None for workflow jobs and jobs that never ran)."""
        if self.private_dir is None:
            return None
        return self.private_dir / 'artifacts' / ARTIFACT_IDENT / 'stdout'

    def stdout(self) -> str:
        """The job's output so far ('' when there is none)."""
        path = self.stdout_path
        if path is None or not path.exists():
            return ''
        return path.read_text(encoding='utf-8', errors='replace')


class Store:
    """Templates, organizations and jobs, with AAP's scheduling: pending → waiting → running → terminal.

    A template without ``allow_simultaneous`` has at most one job past ``pending``; later launches stay ``pending``
    until it is done, and start in launch order. ``waiting_delay`` is how long a job stays ``waiting`` (the
    dispatcher's pick-up time), so pollers can see that status.
    """

    def __init__(self, templates: list, project_dir, work_dir, waiting_delay: float = 0.1):
        self.project_dir = Path(project_dir).resolve()
        self.work_dir = Path(work_dir)
        self.waiting_delay = waiting_delay
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.organizations: dict[str, int] = {}
        self.templates: list[Template] = []
        self.jobs: dict[int, Job] = {}
        self._template_ids = itertools.count(1)
        # One counter for jobs and workflow jobs: AAP's unified job ids are global.
        self._job_ids = itertools.count(1)
        self._closing = False
        for spec in templates:
            self.add_template(spec)
        # AAP's task manager runs apart from the API: a launch answers `pending`, the manager starts it later.
        self._kick = threading.Event()
        self._manager = threading.Thread(target=self._task_manager, name='controller-task-manager', daemon=True)
        self._manager.start()

    # ----------------------------------------------------------- templates
    def add_template(self, spec: dict) -> Template:
        """Register a template (organizations are created on first use)."""
        with self.lock:
            organization = str(spec.get('organization', ''))
            if organization and organization not in self.organizations:
                self.organizations[organization] = len(self.organizations) + 1
            template = Template(next(self._template_ids), self.organizations.get(organization, 0), spec)
            if any(t.name == template.name and t.organization == template.organization and t.kind == template.kind for t in self.templates):
                raise ValueError(f'duplicate {template.kind} template {template.name!r} in organization {template.organization!r}')
            self.templates.append(template)
            return template

    def template(self, template_id: int) -> Template | None:
        """The template with this id, or None."""
        return next((t for t in self.templates if t.id == template_id), None)

    def node_template(self, workflow: Template, name: str) -> Template:
        """The job template a workflow node names: same organization first, else the only one of that name."""
        candidates = [t for t in self.templates if t.kind == 'job' and t.name == name]
        same_org = [t for t in candidates if t.organization == workflow.organization]
        if same_org:
            return same_org[0]
        if len(candidates) == 1:
            return candidates[0]
        raise LookupError(f'workflow {workflow.name!r}: no unique job template named {name!r}')

    # ---------------------------------------------------------------- jobs
    def launch(self, template: Template, extra_vars: dict, launch_type: str = 'manual', parent: Job | None = None, limit: str = '') -> Job:
        """Create a pending job and let the scheduler start it when the template's rules allow."""
        with self.lock:
            if self._closing:
                raise RuntimeError('the controller is shutting down')
            merged = dict(template.extra_vars)
            merged.update(extra_vars)
            job = Job(next(self._job_ids), template, merged, launch_type, parent, limit)
            self.jobs[job.id] = job
            if parent is not None:
                parent.children.append(job)
            self._kick.set()
            self.changed.notify_all()
            return job

    def cancel(self, job: Job) -> bool:
        """Ask a job to stop; False when it is already finished (the API answers 405 then)."""
        with self.lock:
            if job.status not in ACTIVE:
                return False
            job.cancel_requested.set()
            job.canceled_on = job.canceled_on or time.time()
            if job.status == 'pending':
                # Never started: nothing to stop, it is canceled at once (as AAP's task manager does).
                self._finish(job, 'canceled', 'Canceled before it started.')
            for child in job.children:
                if child.status in ACTIVE:
                    self.cancel(child)
            return True

    def delete(self, job: Job) -> None:
        """Purge a finished job; an active one cannot be deleted."""
        with self.lock:
            if job.status in ACTIVE:
                raise PermissionError('Cannot delete running job resource.')
            self.jobs.pop(job.id, None)

    def active(self) -> list[Job]:
        """Jobs not yet finished."""
        with self.lock:
            return [j for j in self.jobs.values() if j.status in ACTIVE]

    def wait_idle(self, timeout: float) -> bool:
        """Block until no job is active; False on timeout."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while any(j.status in ACTIVE for j in self.jobs.values()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.changed.wait(remaining)
            return True

    def close(self, timeout: float = 30.0) -> None:
        """Refuse new launches, cancel every active job and wait for their processes to end."""
        with self.lock:
            self._closing = True
            self._kick.set()
            jobs = list(self.jobs.values())
            for job in jobs:
                if job.status in ACTIVE:
                    self.cancel(job)
        deadline = time.monotonic() + timeout
        for job in jobs:
            if job.thread is not None:
                job.thread.join(max(0.0, deadline - time.monotonic()))

    # ------------------------------------------------------------ internals
    def _blocked(self, job: Job) -> bool:
        if job.template.allow_simultaneous:
            return False
        return any(other is not job and other.template is job.template and other.status in ('waiting', 'running')
                   for other in self.jobs.values())

    def _task_manager(self) -> None:
        while True:
            self._kick.wait()
            self._kick.clear()
            with self.lock:
                if self._closing:
                    return
                self._schedule()

    def _schedule(self) -> None:
        """Start the pending jobs that may start, oldest first (caller holds the lock)."""
        for job in sorted(self.jobs.values(), key=lambda j: j.id):
            if job.status == 'pending' and not self._blocked(job):
                self._set_status(job, 'waiting')
                job.thread = threading.Thread(target=self._execute, args=(job,), name=f'controller-job-{job.id}', daemon=True)
                job.thread.start()

    def _set_status(self, job: Job, status: str) -> None:
        job.status = status
        job.history.append(status)
        job.modified = time.time()
        self.changed.notify_all()

    def _finish(self, job: Job, status: str, explanation: str = '', result_traceback: str = '') -> None:
        """Make a job terminal once (caller holds the lock); later calls are ignored."""
        if job.status in TERMINAL:
            return
        job.finished = time.time()
        job.job_explanation = explanation or job.job_explanation
        job.result_traceback = result_traceback or job.result_traceback
        self._set_status(job, status)
        job.done.set()
        self._kick.set()

    def _execute(self, job: Job) -> None:
        """The job's thread: waiting, running, then a terminal status."""
        if job.cancel_requested.wait(self.waiting_delay):
            with self.lock:
                self._finish(job, 'canceled', 'Canceled before it started.')
            return
        with self.lock:
            if job.status != 'waiting':
                return
            job.started = time.time()
            self._set_status(job, 'running')
        try:
            if job.kind == 'workflow_job':
                status, explanation, trace = self._run_workflow(job)
            else:
                status, explanation, trace = self._run_playbook(job)
        except Exception:  # a broken job must not take the stand-in down: AAP reports it as `error`
            status, explanation, trace = 'error', 'The job could not be run.', traceback.format_exc()
        with self.lock:
            self._finish(job, status, explanation, trace)

    def runtime_vars(self, job: Job) -> dict:
        """The extra vars AAP adds to every run (not shown in the job's extra_vars)."""
        extra = {
            'awx_job_id': job.id, 'tower_job_id': job.id,
            'awx_job_template_id': job.template.id, 'tower_job_template_id': job.template.id,
            'awx_job_template_name': job.template.name, 'tower_job_template_name': job.template.name,
            'awx_job_launch_type': job.launch_type, 'tower_job_launch_type': job.launch_type,
            'awx_user_name': 'admin', 'tower_user_name': 'admin',
        }
        if job.parent is not None:
            extra.update(awx_workflow_job_id=job.parent.id, tower_workflow_job_id=job.parent.id,
                         awx_workflow_job_name=job.parent.template.name, tower_workflow_job_name=job.parent.template.name)
        return extra

    def _run_playbook(self, job: Job) -> tuple:
        job.private_dir = self.work_dir / f'job_{job.id}'
        (job.private_dir / 'env').mkdir(parents=True, exist_ok=True)
        # ansible-runner checks for a cancel once per pexpect timeout (5 s by default): react at once, like AAP.
        # A file, because ansible-runner 2.4 drops the `settings` argument when env/settings does not exist.
        (job.private_dir / 'env' / 'settings').write_text('pexpect_timeout: 0.2\n', encoding='utf-8')
        env = dict(job.template.environment)
        env['JOB_ID'] = str(job.id)
        # The job's ansible-playbook is the one installed beside this interpreter, whatever PATH says.
        env['PATH'] = os.pathsep.join([str(Path(sys.executable).parent), env.get('PATH', os.environ.get('PATH', ''))])
        env.setdefault('ANSIBLE_NOCOLOR', '1')
        env[JOB_MARKER] = str(job.private_dir)
        extravars = dict(job.extra_vars)
        extravars.update(self.runtime_vars(job))
        result = ansible_runner.run(
            private_data_dir=str(job.private_dir), project_dir=str(self.project_dir), playbook=job.template.playbook,
            inventory=job.template.inventory, limit=job.limit or None, extravars=extravars, envvars=env,
            ident=ARTIFACT_IDENT, quiet=True, suppress_env_files=True, cancel_callback=lambda: self._canceled(job),
        )
        job.rc = result.rc
        # AAP's job artifacts are the set_stats data of the run (ansible-rulebook's post_events/set_facts read them).
        for event in result.events:
            if event.get('event') == 'playbook_on_stats':
                job.artifacts = (event.get('event_data') or {}).get('artifact_data') or {}
        status = result.status
        if status == 'successful':
            return 'successful', '', ''
        if status == 'canceled':
            return 'canceled', '', ''
        tail = '\n'.join(job.stdout().rstrip().splitlines()[-TRACEBACK_LINES:])
        if status == 'failed':
            return 'failed', '', tail
        if status == 'timeout':
            return 'failed', 'Job terminated due to timeout', tail
        return 'error', f'ansible-runner ended with status {status} (rc {result.rc})', tail

    @staticmethod
    def _canceled(job: Job) -> bool:
        """ansible-runner's cancel callback: on cancel, also kill the job's detached processes.

        ansible-runner kills ansible-playbook's process group, but ansible's workers run in sessions of their own
        (setsid) and would finish their task, keep the pty open and outlive the job. On AAP the execution
        environment's container goes away with them; here every process carrying the job's marker is killed.
        """
        if not job.cancel_requested.is_set():
            return False
        kill_marked(job.private_dir)
        return True

    def _run_workflow(self, job: Job) -> tuple:
        """Run the nodes' job templates one after the other; the first that does not succeed ends the workflow."""
        for name in job.template.nodes:
            try:
                node_template = self.node_template(job.template, name)
            except LookupError as exc:
                return 'error', str(exc), ''
            try:
                child = self.launch(node_template, dict(job.extra_vars), launch_type='workflow', parent=job, limit=job.limit)
            except RuntimeError:
                return 'canceled', '', ''
            child.done.wait()
            if job.cancel_requested.is_set():
                return 'canceled', '', ''
            if child.status != 'successful':
                return 'failed', f'Workflow node {name!r} (job {child.id}) ended {child.status}.', child.result_traceback
        return 'successful', '', ''
