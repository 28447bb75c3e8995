"""The whole local stack of `make demo` and the end-to-end tests, in one process.

``LocalStack`` starts, in order: a Kubernetes API (``api``: the embedded stand-in, or kube-apiserver built from its Go
module behind the fault-switch proxy; tests/stack/apis.py) and the KubeVirt stand-in as its controller (or, with
``kubeconfig``, uses that cluster, which must serve the CRDs in tests/stack/crds and run KubeVirt), the AAP controller stand-in with the two
job templates running this collection's playbooks for real, and ansible-rulebook on ``rulebooks/compute_instance_webhook.yml``
launching those templates on the controller. ``operator(mode, variant)`` then gives an operator stand-in wired to it:
EDA mode posts to the rulebook's webhook, AAP Direct launches on the controller.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from . import apis
from .controller import ControllerServer
from .operator import Operator

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PLAYBOOKS = {'create': 'create_compute_instance.yml', 'delete': 'delete_compute_instance.yml'}
WEBHOOK_PATHS = {'create': 'create-compute-instance', 'delete': 'delete-compute-instance'}
RULEBOOK = ROOT / 'rulebooks' / 'compute_instance_webhook.yml'


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


class LocalStack:
    """API, KubeVirt, controller and EDA stand-ins (see the module docstring); a context manager.

    ``ready_delay``: seconds until a started VM is Ready (the KubeVirt stand-in); ``rulebook``: start ansible-rulebook
    (EDA mode needs it); ``job_env``: extra environment of every job; ``job_vars``: the job templates' own extra vars;
    ``api``: ``stand-in`` or ``kube-apiserver`` (default: ``CLOUDKIT_TEST_API``, else the stand-in).
    """

    def __init__(self, work_dir, kubeconfig: str | None = None, prefix: str = 'innabox', organization: str = 'innabox',
                 ready_delay: float = 3.0, import_delay: float = 0.5, rulebook: bool = True, job_env: dict | None = None,
                 job_vars: dict | None = None, api: str | None = None):
        self.work_dir = Path(work_dir)
        self.api_backend = api or apis.selected()
        self.kubeconfig = kubeconfig
        self.real_cluster = kubeconfig is not None
        self.prefix, self.organization = prefix, organization
        self.ready_delay, self.import_delay = ready_delay, import_delay
        self.with_rulebook = rulebook
        self.job_env = dict(job_env or {})
        self.job_vars = dict(job_vars or {})
        self.webhook_token = 'demo-' + os.urandom(12).hex()
        self.api = None  # the KubeAPIServer or ControlPlaneAPI (faults, write_log()) when the stack runs its own
        self.kubevirt = None
        self.controller: ControllerServer | None = None
        self.webhook_port: int | None = None
        self._rulebook: subprocess.Popen | None = None
        self._rulebook_log = None

    # ------------------------------------------------------------ lifecycle
    def start(self) -> LocalStack:
        """Start everything; returns once the webhook answers."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        try:
            if not self.real_cluster:
                from .kubevirt import KubeVirtController  # pylint: disable=import-outside-toplevel  # imports kubernetes; only here

                self.api = apis.new_api(self.api_backend, work_dir=self.work_dir / 'kube-apiserver'
                                        if self.api_backend == apis.KUBE_APISERVER else None).start()
                self.kubeconfig = str(self.api.write_kubeconfig(self.work_dir / 'kubeconfig'))
                self.kubevirt = KubeVirtController(self.kubeconfig, ready_delay=self.ready_delay, import_delay=self.import_delay).start()
            self.controller = ControllerServer([], project_dir=ROOT / 'playbooks', work_dir=self.work_dir / 'controller').start()
            self._add_templates()
            if self.with_rulebook:
                self._start_rulebook()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop everything that was started (the rulebook first, so it launches nothing more)."""
        if self._rulebook is not None:
            if self._rulebook.poll() is None:
                self._rulebook.send_signal(signal.SIGINT)
                try:
                    self._rulebook.wait(20)
                except subprocess.TimeoutExpired:
                    self._rulebook.kill()
                    self._rulebook.wait(10)
            self._rulebook_log.close()
            self._rulebook = None
        for part in (self.controller, self.kubevirt, self.api):
            if part is not None:
                part.stop()
        self.controller = self.kubevirt = self.api = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------ wiring
    def template_name(self, action: str) -> str:
        """``<prefix>-create-compute-instance`` or ``<prefix>-delete-compute-instance``."""
        return f'{self.prefix}-{action}-compute-instance'

    def job_environment(self) -> dict:
        """What an AAP job template gets from its credentials: cluster access (K8S_AUTH_*) and, for the delete's cancel of
        running provisions, the controller (CONTROLLER_*)."""
        environment = {
            'K8S_AUTH_KUBECONFIG': self.kubeconfig,
            'ANSIBLE_COLLECTIONS_PATH': str(ROOT / '.build'),
            'ANSIBLE_HOME': str(ROOT / '.ansible'),
            'CONTROLLER_HOST': self.controller.gateway_url,
            'CONTROLLER_OAUTH_TOKEN': self.controller.token,
        }
        environment.update(self.job_env)
        return environment

    def _add_templates(self) -> None:
        environment = self.job_environment()
        for action, playbook in PLAYBOOKS.items():
            self.controller.add_template({'name': self.template_name(action), 'organization': self.organization, 'type': 'job',
                                          'playbook': playbook, 'allow_simultaneous': True, 'ask_variables_on_launch': True,
                                          'environment': environment, 'extra_vars': self.job_vars})

    def webhook_url(self, action: str) -> str:
        """Where the operator POSTs creates (``create``) or deletions (``delete``)."""
        return f'http://127.0.0.1:{self.webhook_port}/{WEBHOOK_PATHS[action]}'

    def _start_rulebook(self) -> None:
        self.webhook_port = free_port()
        variables = self.work_dir / 'rulebook-vars.json'
        variables.write_text(json.dumps({'webhook_host': '127.0.0.1', 'webhook_port': self.webhook_port, 'prefix': self.prefix,
                                         'organization': self.organization}))
        inventory = self.work_dir / 'inventory.yml'
        inventory.write_text('all:\n  hosts:\n    localhost:\n      ansible_connection: local\n')
        environment = dict(os.environ)
        environment.update(PATH=f'{BIN}{os.pathsep}{os.environ.get("PATH", "")}',  # ansible-rulebook finds collections with ansible-galaxy
                           ANSIBLE_COLLECTIONS_PATH=str(ROOT / '.build'), ANSIBLE_HOME=str(ROOT / '.ansible'),
                           webhook_token=self.webhook_token, EDA_JOB_TEMPLATE_REFRESH_DELAY='0.3')
        command = [str(BIN / 'ansible-rulebook'), '--rulebook', str(RULEBOOK), '-i', str(inventory), '--vars', str(variables),
                   '-E', 'webhook_token', '--controller-url', self.controller.gateway_url + '/', '--controller-token',
                   self.controller.token, '--controller-ssl-verify', 'no']
        self._rulebook_log = open(self.work_dir / 'rulebook.log', 'w+', encoding='utf-8')  # pylint: disable=consider-using-with
        self._rulebook = subprocess.Popen(command, env=environment, stdout=self._rulebook_log, stderr=subprocess.STDOUT,  # pylint: disable=consider-using-with
                                          cwd=str(self.work_dir))
        deadline = time.monotonic() + 90
        while self._probe_webhook() != 401:
            if self._rulebook.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError('ansible-rulebook did not start listening; its output:\n' + self.rulebook_output()[-3000:])
            time.sleep(0.2)

    def _probe_webhook(self) -> int | None:
        """The status of an unauthenticated POST (401 once the source listens)."""
        request = urllib.request.Request(self.webhook_url('create'), b'{}', {'Content-Type': 'application/json'})
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None

    def rulebook_exit_code(self) -> int | None:
        """ansible-rulebook's exit code once it has exited on its own (negative: the signal); None while it runs or if not started."""
        return None if self._rulebook is None else self._rulebook.poll()

    def rulebook_output(self) -> str:
        """What ansible-rulebook printed so far."""
        if self._rulebook_log is None:
            return ''
        self._rulebook_log.flush()
        return (self.work_dir / 'rulebook.log').read_text(encoding='utf-8', errors='replace')

    def operator(self, mode: str = 'eda', variant: str = 'seed', api_group: str = 'cloudkit.openshift.io', **kwargs) -> Operator:
        """An operator stand-in (not started) wired to this stack: webhooks in EDA mode, the controller in AAP Direct."""
        if mode == 'eda':
            if self._rulebook is None:
                raise RuntimeError('EDA mode needs the stack started with rulebook=True')
            kwargs.update(create_webhook=self.webhook_url('create'), delete_webhook=self.webhook_url('delete'),
                          webhook_headers={'Authorization': f'Bearer {self.webhook_token}'})
        else:
            kwargs.update(aap_url=self.controller.gateway_url, aap_token=self.controller.token)
        kwargs.setdefault('poll_interval', 0.3)
        kwargs.setdefault('provision_template', self.template_name('create'))
        kwargs.setdefault('deprovision_template', self.template_name('delete'))
        return Operator(self.kubeconfig, mode=mode, variant=variant, api_group=api_group, **kwargs)
