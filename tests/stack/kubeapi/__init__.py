"""A Kubernetes API server stand-in for tests: real HTTP, real JSON shapes, in-memory storage.

``KubeAPIServer`` runs it on a background thread with its own event loop; ``python -m tests.stack.kubeapi`` runs it standalone.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import tempfile
from pathlib import Path

import yaml
from aiohttp import web

from ..loop_thread import LoopThreadMixin
from ..pki import PKI, certificate_user, kubeconfig_dict, write_kubeconfig

from .faults import FaultSwitch
from .server import KubeAPI, random_token

__all__ = ['KubeAPIServer', 'DEFAULT_CRD_DIR', 'load_crd_documents']

DEFAULT_CRD_DIR = Path(__file__).resolve().parent.parent / 'crds'


def load_crd_documents(paths) -> list[dict]:
    """CustomResourceDefinition documents from YAML files and directories (``*.yaml``/``*.yml``, sorted)."""
    docs = []
    for path in [paths] if isinstance(paths, (str, os.PathLike)) else paths:
        path = Path(path)
        files = sorted(p for p in path.iterdir() if p.suffix in ('.yaml', '.yml')) if path.is_dir() else [path]
        for file in files:
            with open(file, encoding='utf-8') as handle:
                for doc in yaml.safe_load_all(handle):
                    if isinstance(doc, dict) and doc.get('kind') == 'CustomResourceDefinition':
                        docs.append(doc)
    return docs


class KubeAPIServer(LoopThreadMixin):
    """The stand-in API server on a background thread.

    ``history`` bounds the watch event ring (older resourceVersions get 410), ``bookmark_interval`` is the
    seconds between BOOKMARK events on watches that allow them (a minute, as kube-apiserver's watch cache sends them).
    ``write_log_size`` bounds the write log (oldest entries are dropped).

    It serves HTTPS with a CA of its own (``ca_file``), as kube-apiserver does, and authenticates the bearer ``token``
    (an administrator) and x509 client certificates that CA signed (user = CN, groups = O; ``write_cert_kubeconfig``).
    """

    thread_name = 'kubeapi'

    def __init__(self, crd_paths=None, port: int = 0, token: str | None = None, host: str = '127.0.0.1', history: int = 10000,
                 bookmark_interval: float = 60.0, fault_seed: int | None = None, write_log_size: int = 100000):
        self.host = host
        self.pki: PKI | None = None
        self.port = port
        self.token = token or random_token()
        self.faults = FaultSwitch(fault_seed)
        self.api = KubeAPI(self.token, history=history, bookmark_interval=bookmark_interval, faults=self.faults,
                           write_log_size=write_log_size)
        self._crd_paths = [] if crd_paths is None else ([crd_paths] if isinstance(crd_paths, (str, os.PathLike)) else list(crd_paths))
        self._runner: web.AppRunner | None = None
        self._init_loop_thread()

    @property
    def url(self) -> str:
        """``https://host:port`` once started."""
        return f'https://{self.host}:{self.port}'

    @property
    def ca_file(self) -> str | None:
        """The CA file that verifies the server and signs client certificates (None before start)."""
        return str(self.pki.ca_crt) if self.pki is not None else None

    def _ssl_context(self) -> ssl.SSLContext:
        # kube-apiserver asks for a client certificate and authenticates those its client CA signed; one CA signs both here.
        self.pki = PKI(tempfile.mkdtemp(prefix='kubeapi-pki-')).generate({})
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.pki.ca_crt))
        context.load_cert_chain(str(self.pki.apiserver_crt), str(self.pki.apiserver_key))
        context.verify_mode = ssl.CERT_OPTIONAL
        return context

    # ----------------------------------------------------------- lifecycle
    async def start_async(self) -> None:
        """Start listening on the current event loop (for callers that already run one, like the CLI)."""
        self.api.bootstrap()
        for doc in load_crd_documents(self._crd_paths):
            self.api.apply_crd(doc)
        # handler_cancellation: a watch whose client went away must stop (and unsubscribe) right away.
        self._runner = web.AppRunner(self.api.make_app(), access_log=None, shutdown_timeout=2.0, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True, ssl_context=self._ssl_context())
        await site.start()
        sockets = self._runner.addresses
        self.port = sockets[0][1]
        self.api.server_address = f'{self.host}:{self.port}'

    async def stop_async(self) -> None:
        """Close watches and the listener."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.pki is not None:
            shutil.rmtree(self.pki.dir, ignore_errors=True)

    # ------------------------------------------------------------- helpers

    def call(self, func, *args):
        """Run ``func(*args)`` on the server loop (the store is not thread-safe) and return its result."""
        if self._loop is None:
            return func(*args)

        async def run():
            return func(*args)
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(30)

    def write_log(self, since_seq: int = 0) -> list[dict]:
        """The logged mutating requests with ``seq > since_seq``, oldest first (see README: write log)."""
        return self.call(self.api.write_log, since_seq)

    def clear_write_log(self) -> None:
        """Empty the write log; sequence numbers keep increasing."""
        self.call(self.api.clear_write_log)

    def load_crds(self, path) -> list[str]:
        """Load (create or replace) CRDs from a YAML file or directory; returns their names."""
        docs = load_crd_documents(path)
        for doc in docs:
            self.call(self.api.apply_crd, doc)
        return [d['metadata']['name'] for d in docs]

    def write_kubeconfig(self, path, namespace: str = 'default') -> str:
        """Write a kubeconfig for this server (context ``kubeapi``, the bearer token, the CA inline) and return its path."""
        return write_kubeconfig(path, kubeconfig_dict(self.url, {'token': self.token}, self.ca_file, namespace))

    def write_cert_kubeconfig(self, path, common_name: str, groups=(), namespace: str = 'default') -> str:
        """A kubeconfig authenticating with a new client certificate (CN ``common_name``, O ``groups``); returns its path."""
        if self.pki is None:
            raise RuntimeError('start the server first: its CA signs the client certificates')
        cert, key = self.pki.client_certificate(common_name.replace(':', '-'), common_name, groups)
        return write_kubeconfig(path, kubeconfig_dict(self.url, certificate_user(cert, key), self.ca_file, namespace))
