"""An AAP automation controller stand-in: the REST API the operator, ansible-rulebook and awx.awx call, real jobs.

``ControllerServer`` serves the API on a background thread (aiohttp, its own event loop) and runs each launched job
with ansible-runner; ``python -m tests.stack.controller`` runs it standalone. See README.md.
"""
from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import string
import tempfile
from pathlib import Path

import yaml
from aiohttp import web

from ..loop_thread import LoopThreadMixin

from .api import DEFAULT_PAGE_SIZE, ControllerAPI
from .model import ACTIVE, TERMINAL, Job, Store, Template

__all__ = ['ControllerServer', 'load_templates', 'ACTIVE', 'TERMINAL']


def random_token() -> str:
    """A bearer token for a server started without one."""
    return ''.join(secrets.choice(string.ascii_letters + string.digits) for _pos in range(40))


def load_templates(source) -> list[dict]:
    """Template specs from a YAML file (a list, or a mapping with ``templates:``) or from a list as is."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, encoding='utf-8') as handle:
            source = yaml.safe_load(handle) or []
    if isinstance(source, dict):
        source = source.get('templates') or []
    if isinstance(source, tuple):
        source = list(source)
    if not isinstance(source, list) or not all(isinstance(spec, dict) for spec in source):
        raise ValueError('templates must be a list of mappings')
    return source


class ControllerServer(LoopThreadMixin):
    """The stand-in on a background thread.

    ``templates`` is a YAML file or a list of template specs, ``project_dir`` the directory playbooks are relative
    to. ``page_size`` is the default page size of lists (AAP's is 25), ``waiting_delay`` the seconds a job stays
    ``waiting``. ``username``/``password`` enable basic auth beside the bearer token.
    """

    thread_name = 'controller stand-in'
    stop_timeout = 60.0  # running jobs are canceled and waited for

    def __init__(self, templates=(), project_dir='.', token: str | None = None, port: int = 0, host: str = '127.0.0.1',
                 username: str | None = None, password: str | None = None, page_size: int = DEFAULT_PAGE_SIZE,
                 waiting_delay: float = 0.1, work_dir=None):
        self.host = host
        self.port = port
        self.token = token or random_token()
        specs = load_templates(templates)
        self._own_work_dir = work_dir is None
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix='controller-stand-in-'))
        try:
            self.store = Store(specs, project_dir, self.work_dir, waiting_delay=waiting_delay)
        except ValueError:
            if self._own_work_dir:
                shutil.rmtree(self.work_dir, ignore_errors=True)
            raise
        self.api = ControllerAPI(self.store, self.token, username=username, password=password, page_size=page_size)
        self._runner: web.AppRunner | None = None
        self._init_loop_thread()

    @property
    def url(self) -> str:
        """``http://host:port`` once started (the API is under ``/api/v2/`` and ``/api/controller/v2/``)."""
        return f'http://{self.host}:{self.port}'

    @property
    def gateway_url(self) -> str:
        """The base URL as AAP 2.5's platform gateway spells it: ``http://host:port/api/controller``."""
        return self.url + '/api/controller'

    # ------------------------------------------------------------ lifecycle
    async def start_async(self) -> None:
        """Start listening on the current event loop (for callers that already run one, like the CLI)."""
        self._runner = web.AppRunner(self.api.make_app(), access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop_async(self) -> None:
        """Cancel every active job, wait for its process to end, close the listener."""
        await asyncio.get_running_loop().run_in_executor(None, self.store.close)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._own_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    @property
    def waiting_delay(self) -> float:
        """Seconds a job stays ``waiting`` before it starts (AAP's launch latency); may be changed while running."""
        return self.store.waiting_delay

    @waiting_delay.setter
    def waiting_delay(self, seconds: float) -> None:
        self.store.waiting_delay = float(seconds)

    # --------------------------------------------------------- inspection

    def jobs(self) -> list[dict]:
        """Every job (and workflow job), oldest first, as the detail endpoint renders it plus ``history`` and ``stdout``."""
        with self.store.lock:
            return [self._snapshot(job) for job in sorted(self.store.jobs.values(), key=lambda j: j.id)]

    def job(self, job_id: int) -> dict:
        """One job as ``jobs()`` renders it; KeyError when there is no such job."""
        with self.store.lock:
            return self._snapshot(self.store.jobs[job_id])

    def _snapshot(self, job: Job) -> dict:
        data = self.api.render_job(job, '/api', detail=True)
        data['history'] = list(job.history)
        data['children'] = [child.id for child in job.children]
        data['stdout'] = job.stdout()
        data['rc'] = job.rc
        return data

    def templates(self) -> list[Template]:
        """The loaded templates."""
        return list(self.store.templates)

    def add_template(self, spec: dict) -> int:
        """Add a template while running; returns its id."""
        return self.store.add_template(spec).id

    def purge(self, job_id: int) -> None:
        """Delete a finished job, as AAP's cleanup jobs do (its id then answers 404)."""
        with self.store.lock:
            self.store.delete(self.store.jobs[job_id])

    def requests(self) -> list[tuple[str, str]]:
        """(method, path?query) of every request received, oldest first."""
        return list(self.api.requests)

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until no job is pending, waiting or running; False on timeout."""
        return self.store.wait_idle(timeout)

    def wait_status(self, job_id: int, statuses, timeout: float = 60.0) -> str:
        """Block until the job's status is one of ``statuses``; returns it (TimeoutError otherwise)."""
        statuses = (statuses,) if isinstance(statuses, str) else tuple(statuses)
        with self.store.changed:
            ok = self.store.changed.wait_for(lambda: self.store.jobs[job_id].status in statuses, timeout)
            status = self.store.jobs[job_id].status
        if not ok:
            raise TimeoutError(f'job {job_id} is {status}, not {"/".join(statuses)}, after {timeout} s')
        return status
