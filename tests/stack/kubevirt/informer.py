"""List + watch of one custom resource into an in-memory cache, through the official client only (works against any API server)."""
from __future__ import annotations

import json
import logging
import threading

import time

import urllib3
from kubernetes import client, config

LOG = logging.getLogger(__name__)

# Errors after which a list or a watch is simply tried again: API errors, broken or refused connections, garbled bodies.
TRANSIENT = (client.ApiException, urllib3.exceptions.HTTPError, OSError, ValueError)
_WATCH_SECONDS = 300
# (connect, read) timeouts; a watch's read timeout exceeds its server-side duration, so only a hung server trips it.
REQUEST_TIMEOUT = (10, 30)
_WATCH_TIMEOUT = (10, _WATCH_SECONDS + 30)


def custom_objects_api(kubeconfig: str | None, pool_size: int) -> tuple[client.ApiClient, client.CustomObjectsApi]:
    """A client for a stand-in controller: our own backoff handles throttling and errors, so urllib3 only
    retries connecting (never a request that may have been sent)."""
    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    cfg.retries = urllib3.Retry(total=3, read=0, status=0, redirect=0, respect_retry_after_header=False, raise_on_status=False)
    cfg.connection_pool_maxsize = pool_size
    api_client = client.ApiClient(cfg)
    return api_client, client.CustomObjectsApi(api_client)


def start_synced(informers, timeout: float):
    """Start the informers and wait until each has listed; returns the first that did not within timeout, else None."""
    for informer in informers:
        informer.start()
    deadline = time.monotonic() + timeout
    for informer in informers:
        if not informer.synced.wait(max(0.0, deadline - time.monotonic())):
            return informer
    return None


class _Expired(Exception):
    """The watch's resourceVersion is too old (410): list again."""


class Informer:
    """Keeps ``cache`` (``(namespace, name) -> object``) in step with the API and calls ``handler(event, obj)`` for every change.

    ``event`` is ADDED, MODIFIED or DELETED; a relist after an error reports the differences the same way. Objects in the
    cache are shared: callers must not modify them.
    """

    def __init__(self, api: client.CustomObjectsApi, group: str, version: str, plural: str, namespace: str | None, handler,
                 stopping: threading.Event):
        self.api = api
        self.group, self.version, self.plural = group, version, plural
        self.namespace = namespace
        self.handler = handler
        self.synced = threading.Event()
        self._stopping = stopping
        self._lock = threading.Lock()
        self._cache: dict = {}
        self._response = None
        self._thread = threading.Thread(target=self._run, name=f'informer-{plural}')

    # ------------------------------------------------------------- reading
    def get(self, namespace: str, name: str) -> dict | None:
        """The cached object, or None."""
        with self._lock:
            return self._cache.get((namespace, name))

    def items(self, namespace: str | None = None) -> list[dict]:
        """Cached objects, of one namespace or of all."""
        with self._lock:
            return [obj for (ns, _name), obj in self._cache.items() if namespace is None or ns == namespace]

    # ----------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Start the list/watch thread."""
        self._thread.start()

    def stop(self) -> None:
        """Unblock a watch read (the caller has set ``stopping``) and join the thread."""
        with self._lock:
            response = self._response
        if response is not None:
            response.shutdown()
        self._thread.join()

    def _run(self) -> None:
        failures = 0
        resource_version = None
        while not self._stopping.is_set():
            try:
                if resource_version is None:
                    resource_version = self._relist()
                    self.synced.set()
                resource_version = self._watch(resource_version)
                failures = 0
            except _Expired:
                resource_version = None
            except TRANSIENT as exc:
                if self._stopping.is_set():
                    break
                failures += 1
                LOG.debug('%s list/watch failed (%s); retrying', self.plural, exc)
                # Back off (capped) on consecutive failures; Event.wait ends early on stop.
                self._stopping.wait(min(0.05 * 2 ** min(failures, 6), 2.0))

    def _call(self, **kwargs):
        if self.group == '':
            return self._core_call(**kwargs)
        if self.namespace is None:
            return self.api.list_cluster_custom_object(self.group, self.version, self.plural, **kwargs)
        return self.api.list_namespaced_custom_object(self.group, self.version, self.namespace, self.plural, **kwargs)

    # Core (group "") resources this informer can follow: plural -> the CoreV1Api method name's stem.
    CORE = {'persistentvolumeclaims': 'persistent_volume_claim'}

    def _core_call(self, watch: bool = False, **kwargs):
        """A core resource, listed (decoded as a plain dict, like custom objects) or watched (the raw response)."""
        core = client.CoreV1Api(self.api.api_client)
        stem = self.CORE[self.plural]
        if self.namespace is None:
            method, args = getattr(core, f'list_{stem}_for_all_namespaces'), ()
        else:
            method, args = getattr(core, f'list_namespaced_{stem}'), (self.namespace,)
        if watch:
            return method(*args, watch=True, **kwargs)
        response = method(*args, _preload_content=False, **kwargs)
        listing = json.loads(response.data)
        for item in listing.get('items') or []:
            item.setdefault('apiVersion', 'v1')
            item.setdefault('kind', 'PersistentVolumeClaim')
        return listing

    def _relist(self) -> str:
        listing = self._call(_request_timeout=REQUEST_TIMEOUT)
        fresh = {(o['metadata'].get('namespace'), o['metadata']['name']): o for o in listing.get('items') or []}
        with self._lock:
            old, self._cache = self._cache, fresh
        for key, obj in old.items():
            if key not in fresh:
                self.handler('DELETED', obj)
        for key, obj in fresh.items():
            before = old.get(key)
            if before is None:
                self.handler('ADDED', obj)
            elif before['metadata'].get('resourceVersion') != obj['metadata'].get('resourceVersion'):
                self.handler('MODIFIED', obj)
        return listing['metadata']['resourceVersion']

    def _watch(self, resource_version: str) -> str:
        """Stream events from ``resource_version`` until the stream ends; returns the last resourceVersion seen."""
        response = self._call(watch=True, resource_version=resource_version, allow_watch_bookmarks=True, timeout_seconds=_WATCH_SECONDS,
                              _preload_content=False, _request_timeout=_WATCH_TIMEOUT)
        with self._lock:
            self._response = response
        try:
            # stop() may have run between the call and the assignment above: it could not shut this response down.
            if self._stopping.is_set():
                return resource_version
            buffer = b''
            for chunk in response.stream(amt=None, decode_content=False):
                buffer += chunk
                *lines, buffer = buffer.split(b'\n')
                for line in lines:
                    if line.strip():
                        resource_version = self._event(json.loads(line), resource_version)
            return resource_version
        finally:
            with self._lock:
                self._response = None
            response.release_conn()

    def _event(self, event: dict, resource_version: str) -> str:
        kind, obj = event.get('type'), event.get('object') or {}
        if kind == 'ERROR':
            if obj.get('code') == 410:
                raise _Expired()
            raise ValueError(f'watch error: {obj.get("message")}')
        new_rv = (obj.get('metadata') or {}).get('resourceVersion') or resource_version
        if kind == 'BOOKMARK':
            return new_rv
        key = (obj['metadata'].get('namespace'), obj['metadata']['name'])
        with self._lock:
            if kind == 'DELETED':
                self._cache.pop(key, None)
            else:
                self._cache[key] = obj
        self.handler(kind, obj)
        return new_rv
