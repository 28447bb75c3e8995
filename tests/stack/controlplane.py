"""A real Kubernetes control plane for the tests: etcd, kube-apiserver and kube-controller-manager, built from their Go
modules by tools/k8s/build.sh into .build/k8s/bin, started on loopback ports in a temporary directory.

``ControlPlane`` runs the three processes: etcd with a temporary data dir; kube-apiserver with TLS (a CA and serving
certificate of its own, tests/stack/pki.py), static-token and x509 client-certificate authentication, the requestheader
authenticator for the proxy, the RBAC authorizer and a service-account signing key; the CRDs of tests/stack/crds applied
and established and a default StorageClass; then kube-controller-manager for garbage collection, namespace deletion and
service accounts and their tokens, and the aggregated ClusterRoles (admin, edit, view).

``ControlPlaneAPI`` is that control plane behind ``APIProxy`` (tests/stack/proxy.py: the fault switch and the write log),
with the interface of the stand-in's ``KubeAPIServer``: ``start()``/``stop()``, ``url``, ``token``, ``faults``,
``write_log()``, ``clear_write_log()``, ``write_kubeconfig()``, ``load_crds()``. Clients reach kube-apiserver through the
proxy, over TLS verified with the control plane's CA.

``python -m tests.stack.controlplane --dir DIR --kubeconfig PATH`` runs it until SIGTERM/SIGINT.
"""
from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from .kubeapi import DEFAULT_CRD_DIR, load_crd_documents
from .pki import PKI, certificate_user, kubeconfig_dict, write_kubeconfig
from .proxy import APIProxy

ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get('CLOUDKIT_K8S_BIN') or ROOT / '.build' / 'k8s' / 'bin')
SERVICE_CIDR = '10.0.0.0/24'
# Static-token users (tokens.csv): the admin the tests run as, and a user with no permissions but those of every
# authenticated user (RBAC tests bind roles to it or impersonate service accounts).
ADMIN_USER = 'cloudkit-admin'
PLAIN_USER = 'cloudkit-user'
USERS = {ADMIN_USER: ['system:masters'], PLAIN_USER: []}
CONTROLLERS = ('garbage-collector-controller', 'namespace-controller', 'serviceaccount-controller', 'serviceaccount-token-controller',
               'root-ca-certificate-publisher-controller', 'clusterrole-aggregation-controller',
               # kube-apiserver puts kubernetes.io/pvc-protection on every claim; this controller lifts it once no pod uses the claim.
               'persistentvolumeclaim-protection-controller')
DEFAULT_STORAGE_CLASS = {
    'apiVersion': 'storage.k8s.io/v1', 'kind': 'StorageClass',
    'metadata': {'name': 'standard', 'annotations': {'storageclass.kubernetes.io/is-default-class': 'true'}},
    'provisioner': 'kubevirt.io.hostpath-provisioner', 'reclaimPolicy': 'Delete', 'volumeBindingMode': 'WaitForFirstConsumer'}


class ControlPlaneError(RuntimeError):
    """The control plane could not start (missing binaries, a process that died or never got ready)."""


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def binaries_present(bin_dir: Path = BIN_DIR) -> bool:
    """Whether tools/k8s/build.sh has built the three binaries."""
    return all((bin_dir / name).is_file() for name in ('etcd', 'kube-apiserver', 'kube-controller-manager'))


class ControlPlane:
    """etcd, kube-apiserver and kube-controller-manager as child processes (see the module docstring).

    ``work_dir``: where the PKI, etcd's data, the kubeconfigs and the logs go (a temporary directory, removed on stop,
    when not given); ``crd_paths``: CRD files or directories applied before anything else runs.
    """

    def __init__(self, work_dir=None, crd_paths=None, bin_dir: Path | None = None):
        self._own_dir = work_dir is None
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix='cloudkit-k8s-'))
        self.crd_paths = [DEFAULT_CRD_DIR] if crd_paths is None else list(crd_paths)
        self.bin_dir = Path(bin_dir or BIN_DIR)
        self.pki: PKI | None = None
        self.port: int | None = None
        self.processes: dict[str, subprocess.Popen] = {}
        self._logs: dict = {}
        self.timings: dict[str, float] = {}
        self.admin_kubeconfig: str | None = None

    @property
    def url(self) -> str:
        """kube-apiserver's own URL (clients normally use the proxy's)."""
        return f'https://127.0.0.1:{self.port}'

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> ControlPlane:
        """Start etcd, kube-apiserver (waits for /readyz), apply the CRDs, start kube-controller-manager (waits for /healthz)."""
        if not binaries_present(self.bin_dir):
            raise ControlPlaneError(f'no control plane binaries in {self.bin_dir}: run `make bootstrap` (tools/k8s/build.sh) first, '
                                    'or choose the stand-in (CLOUDKIT_TEST_API=stand-in)')
        began = time.monotonic()
        atexit.register(self.stop)  # a script that dies with an exception must not leave the processes running
        try:
            self.work_dir.mkdir(parents=True, exist_ok=True)
            self._stop_leftovers()
            self.pki = PKI(self.work_dir / 'pki').generate(USERS)
            self._start_etcd()
            self._start_apiserver()
            self.admin_kubeconfig = write_kubeconfig(self.work_dir / 'admin.kubeconfig', kubeconfig_dict(
                self.url, {'client-certificate': str(self.pki.admin_crt), 'client-key': str(self.pki.admin_key)}, self.pki.ca_crt,
                name='cloudkit'))
            mark = time.monotonic()
            self.bootstrap()
            self.timings['crds'] = time.monotonic() - mark
            self._start_controller_manager()
        except BaseException:
            self.stop()
            raise
        self.timings['total'] = time.monotonic() - began
        return self

    def stop(self) -> None:
        """SIGTERM every process (newest first), SIGKILL after 10 s; remove the work dir if it is a temporary one."""
        atexit.unregister(self.stop)
        for name in reversed(list(self.processes)):
            process = self.processes[name]
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 10
        for name, process in reversed(list(self.processes.items())):
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
            (self.work_dir / f'{name}.pid').unlink(missing_ok=True)
        self.processes.clear()
        for log in self._logs.values():
            log.close()
        self._logs.clear()
        if self._own_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)
        else:
            shutil.rmtree(self.work_dir / 'etcd', ignore_errors=True)

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _stop_leftovers(self) -> None:
        """Kill what a previous run in this directory left (a SIGKILLed runner): by the pids it recorded, if still ours."""
        for pid_file in self.work_dir.glob('*.pid'):
            try:
                pid = int(pid_file.read_text())
                cmdline = Path(f'/proc/{pid}/cmdline').read_bytes().split(b'\0')[0].decode()
                if cmdline.startswith(str(self.bin_dir)):
                    os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError):
                pass
            pid_file.unlink(missing_ok=True)

    # ------------------------------------------------------------------ processes
    def _spawn(self, name: str, args: list) -> subprocess.Popen:
        log = open(self.work_dir / f'{name}.log', 'ab')  # pylint: disable=consider-using-with
        self._logs[name] = log
        process = subprocess.Popen([str(self.bin_dir / name)] + args, stdout=log, stderr=subprocess.STDOUT,  # pylint: disable=consider-using-with
                                   stdin=subprocess.DEVNULL, cwd=str(self.work_dir), start_new_session=True)
        self.processes[name] = process
        (self.work_dir / f'{name}.pid').write_text(str(process.pid))
        return process

    def _wait(self, name: str, probe, timeout: float = 60.0) -> None:
        began = time.monotonic()
        process = self.processes[name]
        while not probe():
            if process.poll() is not None:
                raise ControlPlaneError(f'{name} exited with {process.returncode}:\n{self.log_tail(name)}')
            if time.monotonic() - began > timeout:
                raise ControlPlaneError(f'{name} not ready after {timeout:.0f} s:\n{self.log_tail(name)}')
            time.sleep(0.05)
        self.timings[name] = time.monotonic() - began

    def log_tail(self, name: str, lines: int = 30) -> str:
        """The last lines of a component's log."""
        path = self.work_dir / f'{name}.log'
        return '\n'.join(path.read_text(errors='replace').splitlines()[-lines:]) if path.exists() else ''

    def _start_etcd(self) -> None:
        client_port, peer_port = free_port(), free_port()
        self.etcd_url = f'http://127.0.0.1:{client_port}'
        peer = f'http://127.0.0.1:{peer_port}'
        self._spawn('etcd', [
            '--name', 'cloudkit', '--data-dir', str(self.work_dir / 'etcd'),
            '--listen-client-urls', self.etcd_url, '--advertise-client-urls', self.etcd_url,
            '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', f'cloudkit={peer}',
            '--listen-metrics-urls', f'http://127.0.0.1:{free_port()}',
            # Test data: no fsync (a shared disk would make every write wait), a small backend quota.
            '--unsafe-no-fsync', '--quota-backend-bytes', str(2 * 1024 ** 3), '--log-level', 'warn'])
        self._wait('etcd', lambda: b'"health":"true"' in (self._get(self.etcd_url + '/health', None) or b''), 30)

    def _start_apiserver(self) -> None:
        pki = self.pki
        self.port = free_port()
        self._spawn('kube-apiserver', [
            f'--etcd-servers={self.etcd_url}',
            '--bind-address=127.0.0.1', f'--secure-port={self.port}', '--advertise-address=127.0.0.1',
            f'--tls-cert-file={pki.apiserver_crt}', f'--tls-private-key-file={pki.apiserver_key}',
            f'--client-ca-file={pki.ca_crt}', f'--token-auth-file={pki.tokens_csv}',
            '--authorization-mode=RBAC',
            '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
            f'--service-account-key-file={pki.sa_pub}', f'--service-account-signing-key-file={pki.sa_key}',
            f'--service-cluster-ip-range={SERVICE_CIDR}', '--endpoint-reconciler-type=none',
            # The proxy passes on client-certificate users as a front proxy does (kube-aggregator's requestheader scheme).
            f'--requestheader-client-ca-file={pki.front_proxy_ca_crt}', '--requestheader-allowed-names=front-proxy-client',
            '--requestheader-username-headers=X-Remote-User', '--requestheader-group-headers=X-Remote-Group',
            '--requestheader-extra-headers-prefix=X-Remote-Extra-',
            f'--proxy-client-cert-file={pki.front_proxy_client_crt}', f'--proxy-client-key-file={pki.front_proxy_client_key}',
            '--profiling=false'])
        self._wait('kube-apiserver', lambda: self._get(self.url + '/readyz', self._admin_ssl()) == b'ok', 90)

    def _start_controller_manager(self) -> None:
        pki = self.pki
        port = free_port()
        self._spawn('kube-controller-manager', [
            f'--kubeconfig={self.admin_kubeconfig}', f'--authentication-kubeconfig={self.admin_kubeconfig}',
            f'--authorization-kubeconfig={self.admin_kubeconfig}',
            '--bind-address=127.0.0.1', f'--secure-port={port}', '--leader-elect=false',
            f'--controllers={",".join(CONTROLLERS)}', '--use-service-account-credentials=true',
            f'--service-account-private-key-file={pki.sa_key}', f'--root-ca-file={pki.ca_crt}',
            f'--service-cluster-ip-range={SERVICE_CIDR}',
            # Every test namespace is deleted at its end: let the namespace controller and the garbage collector keep up.
            '--kube-api-qps=100', '--kube-api-burst=200', '--profiling=false'])
        unverified = ssl.create_default_context()
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE
        self._wait('kube-controller-manager', lambda: self._get(f'https://127.0.0.1:{port}/healthz', unverified) == b'ok', 60)

    # ------------------------------------------------------------------ HTTP with the admin identity
    def _admin_ssl(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki.ca_crt))
        context.load_cert_chain(str(self.pki.admin_crt), str(self.pki.admin_key))
        return context

    @staticmethod
    def _get(url: str, context) -> bytes | None:
        try:
            with urllib.request.urlopen(url, timeout=5, context=context) as resp:  # noqa: S310
                return resp.read()
        except (urllib.error.URLError, OSError):
            return None

    def request(self, method: str, path: str, body=None) -> tuple[int, dict]:
        """(status, JSON body) of one call to kube-apiserver as the admin (system:masters)."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {'Content-Type': 'application/json', 'Accept': 'application/json'}
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30, context=self._admin_ssl()) as resp:  # noqa: S310
                return resp.status, json.loads(resp.read() or b'{}')
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b'{}')

    # ------------------------------------------------------------------ cluster content
    def bootstrap(self) -> None:
        """The default StorageClass and the CRDs of ``crd_paths``."""
        status, body = self.request('POST', '/apis/storage.k8s.io/v1/storageclasses', DEFAULT_STORAGE_CLASS)
        if status not in (201, 409):
            raise ControlPlaneError(f'could not create the default StorageClass: {status} {body}')
        self.apply_crds(self.crd_paths)

    def apply_crds(self, paths, timeout: float = 60.0) -> list[str]:
        """Create (or replace) the CRDs in ``paths``, then wait until each is Established and served; returns their names."""
        docs = load_crd_documents(paths)
        for doc in docs:
            name = doc['metadata']['name']
            status, body = self.request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', doc)
            if status == 409:
                status, live = self.request('GET', f'/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}')
                doc = dict(doc, metadata=dict(doc['metadata'], resourceVersion=live['metadata']['resourceVersion']))
                status, body = self.request('PUT', f'/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}', doc)
            if status not in (200, 201):
                raise ControlPlaneError(f'CRD {name} refused: {status} {body.get("message", body)}')
        deadline = time.monotonic() + timeout
        for doc in docs:
            name, spec = doc['metadata']['name'], doc['spec']
            version = next(v['name'] for v in spec['versions'] if v.get('served', True))
            while not self._served(name, spec['group'], version, spec['names']['plural']):
                if time.monotonic() > deadline:
                    raise ControlPlaneError(f'CRD {name} not established after {timeout:.0f} s')
                time.sleep(0.05)
        return [d['metadata']['name'] for d in docs]

    def _served(self, name: str, group: str, version: str, plural: str) -> bool:
        status, crd = self.request('GET', f'/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}')
        conditions = {c['type']: c['status'] for c in (crd.get('status') or {}).get('conditions') or []} if status == 200 else {}
        if conditions.get('Established') != 'True':
            return False
        status, resources = self.request('GET', f'/apis/{group}/{version}')
        return status == 200 and any(r.get('name') == plural for r in resources.get('resources') or [])


class ControlPlaneAPI:
    """A ``ControlPlane`` behind an ``APIProxy``, with the stand-in's ``KubeAPIServer`` interface (see the module docstring)."""

    def __init__(self, crd_paths=None, work_dir=None, fault_seed: int | None = None, write_log_size: int = 100000, port: int = 0):
        self.control_plane = ControlPlane(work_dir, crd_paths)
        self._proxy_options = {'fault_seed': fault_seed, 'write_log_size': write_log_size, 'port': port}
        self.proxy: APIProxy | None = None

    # ------------------------------------------------------------------ lifecycle
    def _make_proxy(self) -> APIProxy:
        cp = self.control_plane
        pki = cp.pki
        return APIProxy(cp.url, pki.ca_crt, pki.proxy_crt, pki.proxy_key, pki.front_proxy_client_crt, pki.front_proxy_client_key,
                        self.token, **self._proxy_options)

    def start(self) -> ControlPlaneAPI:
        """Start the control plane, then the proxy on a background thread."""
        self.control_plane.start()
        try:
            self.proxy = self._make_proxy().start()
        except BaseException:
            self.control_plane.stop()
            raise
        return self

    async def start_async(self) -> None:
        """Start the control plane (in a worker thread), then the proxy on the running loop (for the CLI)."""
        await asyncio.get_running_loop().run_in_executor(None, self.control_plane.start)
        self.proxy = self._make_proxy()
        await self.proxy.start_async()

    def stop(self) -> None:
        """Stop the proxy, then the control plane."""
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None
        self.control_plane.stop()

    async def stop_async(self) -> None:
        """The CLI's stop."""
        if self.proxy is not None:
            await self.proxy.stop_async()
            self.proxy = None
        await asyncio.get_running_loop().run_in_executor(None, self.control_plane.stop)

    def __enter__(self) -> ControlPlaneAPI:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ the stand-in's interface
    @property
    def url(self) -> str:
        """The proxy's ``https://127.0.0.1:port``: where clients connect."""
        return self.proxy.url

    @property
    def token(self) -> str:
        """The admin's bearer token (system:masters); also the token of the proxy's /_admin endpoints."""
        return self.control_plane.pki.tokens[ADMIN_USER]

    @property
    def faults(self):
        """The proxy's fault switch."""
        return self.proxy.faults

    @property
    def ca_file(self) -> str:
        """The CA that verifies the proxy and kube-apiserver (and signed the client certificates)."""
        return str(self.control_plane.pki.ca_crt)

    def write_log(self, since_seq: int = 0) -> list[dict]:
        """The proxy's write log (tests/stack/kubeapi/README.md, Write log)."""
        return self.proxy.write_log(since_seq)

    def clear_write_log(self) -> None:
        """Empty the proxy's write log; sequence numbers keep increasing."""
        self.proxy.clear_write_log()

    def load_crds(self, path) -> list[str]:
        """Create or replace CRDs from a file or directory and wait until they are served; returns their names."""
        return self.control_plane.apply_crds([path])

    def write_kubeconfig(self, path, namespace: str = 'default', user: str = ADMIN_USER) -> str:
        """A kubeconfig for the proxy with a static-token user (the admin by default), the CA inline; returns its path."""
        return write_kubeconfig(path, kubeconfig_dict(self.url, {'token': self.control_plane.pki.tokens[user]}, self.control_plane.pki.ca_crt,
                                                      namespace, name='cloudkit'))

    def write_cert_kubeconfig(self, path, common_name: str, groups=(), namespace: str = 'default') -> str:
        """A kubeconfig for the proxy authenticating with a new client certificate (CN ``common_name``, O ``groups``)."""
        cert, key = self.control_plane.pki.client_certificate(common_name.replace(':', '-'), common_name, groups)
        return write_kubeconfig(path, kubeconfig_dict(self.url, certificate_user(cert, key), self.control_plane.pki.ca_crt, namespace,
                                                      name='cloudkit'))


async def _serve(args: argparse.Namespace) -> None:
    from .loop_thread import until_signalled  # pylint: disable=import-outside-toplevel

    api = ControlPlaneAPI(crd_paths=args.crds or [DEFAULT_CRD_DIR], work_dir=args.dir, port=args.port)
    await api.start_async()
    try:
        if args.kubeconfig:
            tmp = Path(args.kubeconfig + '.tmp')
            api.write_kubeconfig(tmp, args.namespace)
            tmp.replace(args.kubeconfig)  # appears complete: `python -m tests.stack up` waits for it
        print(api.url, json.dumps({k: round(v, 2) for k, v in api.control_plane.timings.items()}), flush=True)
        await until_signalled()
    finally:
        await api.stop_async()


def main(argv=None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog='python -m tests.stack.controlplane', description=__doc__.splitlines()[0])
    parser.add_argument('--dir', required=True, help='work directory: PKI, etcd data, kubeconfigs, logs')
    parser.add_argument('--kubeconfig', help='write a kubeconfig for the proxy (admin token) here')
    parser.add_argument('--namespace', default='default', help='namespace of the kubeconfig context')
    parser.add_argument('--crds', action='append', help=f'CRD file or directory (repeatable; default {DEFAULT_CRD_DIR})')
    parser.add_argument('--port', type=int, default=0, help="the proxy's port (0 picks a free one)")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args))
    return 0


if __name__ == '__main__':
    sys.exit(main())
