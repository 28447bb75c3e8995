# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The Kubernetes client of every module and of the event source: JSON over HTTP on a urllib3 pool.

Requests go straight to REST paths built from a static table of the kinds this
collection uses (kube_resources), so the hot path makes no discovery round trips;
discovery is only the fallback for a kind the table does not know, once per client.
Connection settings come from kubeconfig, errors are typed in kube_errors, retries
follow retry.Retry; guarded writes and waits over this client are in guarded.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Iterator, Mapping
from typing import Any, Callable, Optional, Union
from urllib.parse import urlencode, urlsplit

from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_errors import (
    NotFound,
    ServerError,
    TransportError,
    error_from_response,
    error_from_watch_event,
)
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_resources import (
    STATIC_RESOURCES,
    Resource,
    contract_resources,
)
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kubeconfig import (
    Configuration,
    auth_headers,
    build_configuration,
    proxy_basic_auth,
    proxy_for,
    resolve_connection_options,
)
from ansible_collections.cloudkit.provisioning.plugins.module_utils.names import (
    API_VERSION,
    COMPUTE_INSTANCE_KIND,
    TENANT_KIND,
    USER_AGENT,
    Names,
)
from ansible_collections.cloudkit.provisioning.plugins.module_utils.retry import Retry

URLLIB3_IMPORT_ERROR = None
try:
    import urllib3
except ImportError as exc:  # guarded so modules can report it with missing_required_lib
    urllib3 = None
    URLLIB3_IMPORT_ERROR = exc

DEFAULT_REQUEST_TIMEOUT = 30.0

PATCH_CONTENT_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}

KubeObject = dict[str, Any]


class ApiClient:
    """What KubeClient uses of kubernetes.client.ApiClient: the configuration and a urllib3 pool built from it."""

    def __init__(self, configuration: Configuration):
        self.configuration = configuration
        self.rest_client = _RestClient(configuration)


class _RestClient:
    # kubernetes.client.ApiClient keeps its pool at api_client.rest_client.pool_manager; so do we.

    def __init__(self, configuration):
        self.pool_manager = pool_manager(configuration)


def pool_manager(configuration: Any) -> Any:
    """A urllib3 pool with the TLS and proxy settings of `configuration`, as kubernetes.client builds it."""
    pool_args = {
        "cert_reqs": ssl.CERT_REQUIRED if configuration.verify_ssl else ssl.CERT_NONE,
        "ca_certs": configuration.ssl_ca_cert,
        "cert_file": configuration.cert_file,
        "key_file": configuration.key_file,
        "maxsize": (os.cpu_count() or 1) * 5,
    }
    if configuration.assert_hostname is not None:
        pool_args["assert_hostname"] = configuration.assert_hostname
    if configuration.tls_server_name:
        pool_args["server_hostname"] = configuration.tls_server_name
    proxy = proxy_for(configuration)
    if not proxy:
        return urllib3.PoolManager(**pool_args)
    if urlsplit(proxy).scheme.lower().startswith("socks"):
        from urllib3.contrib.socks import SOCKSProxyManager  # pylint: disable=import-outside-toplevel

        return SOCKSProxyManager(proxy, headers=configuration.proxy_headers, **pool_args)
    headers = configuration.proxy_headers
    credentials = proxy_basic_auth(proxy)
    if credentials and not headers:
        # urllib3 sends no credentials from the proxy URL by itself.
        headers = urllib3.util.make_headers(proxy_basic_auth=credentials)
    return urllib3.ProxyManager(proxy, proxy_headers=headers, **pool_args)


def ssl_context(configuration: Any) -> Optional[ssl.SSLContext]:
    """The TLS settings of `configuration` as an SSLContext, for an asyncio client (None for plain HTTP)."""
    if not configuration.host.lower().startswith("https"):
        return None
    if configuration.verify_ssl:
        context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
        if configuration.assert_hostname is False:
            context.check_hostname = False
    else:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file or None)
    return context


def request_headers(configuration: Any, content_type: Optional[str] = None) -> dict[str, str]:
    """Accept, User-Agent, Content-Type and the credentials (auth_headers also runs the token refresh hook)."""
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    if content_type:
        headers["Content-Type"] = content_type
    headers.update(auth_headers(configuration))
    return headers


def page_items(resource: Resource, page: Mapping[str, Any]) -> list[KubeObject]:
    """The items of one list page, each with its apiVersion and kind (a list's items carry neither)."""
    items = page.get("items") or []
    for item in items:
        item.setdefault("apiVersion", resource.api_version)
        item.setdefault("kind", resource.kind)
    return items


class WatchDecoder:
    """Splits a watch response body into its events, one JSON object a line, across chunk boundaries.

    An ERROR event is raised as the typed error it carries (410 Gone: relist), in stream order.
    """

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> Iterator[KubeObject]:
        lines = (self._buffer + chunk).split(b"\n")
        self._buffer = lines.pop()
        for line in lines:
            if line.strip():
                yield _watch_event(json.loads(line))

    def close(self) -> Iterator[KubeObject]:
        rest, self._buffer = self._buffer, b""
        if rest.strip():
            yield _watch_event(json.loads(rest))


def _watch_event(event: KubeObject) -> KubeObject:
    if event.get("type") == "ERROR":
        raise error_from_watch_event(event)
    return event


class KubeClient:
    """Thin JSON-over-HTTP client on a urllib3 pool.

    `api_client` is an ApiClient of this module or a kubernetes.client.ApiClient
    (the exec/auth-provider fallback): both carry the configuration (TLS,
    proxy, credentials and their refresh hook) and the urllib3 pool the
    requests go through, which lets watches stream.
    """

    def __init__(
        self,
        api_client: Any,
        retry: Optional[Retry] = None,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        resources: Optional[list[Resource]] = None,
    ):
        self.api_client = api_client
        self.configuration = api_client.configuration
        self.retry = retry or Retry()
        self.request_timeout = request_timeout
        self._resources = dict(STATIC_RESOURCES)
        for resource in resources or ():
            self._resources[(resource.api_version, resource.kind)] = resource
        self._discovered: set[str] = set()
        # Called before every write (create, replace, patch, delete); the lock's fence raises there to stop a job
        # that no longer holds its instance's Lease before the write is sent.
        self.before_write: Optional[Callable[[], None]] = None

    @classmethod
    def from_options(
        cls,
        options: Optional[Mapping[str, Any]] = None,
        retry: Optional[Retry] = None,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        resources: Optional[list[Resource]] = None,
    ) -> KubeClient:
        """A client from kubernetes.core-style connection options (env fallbacks applied)."""
        if URLLIB3_IMPORT_ERROR is not None:
            raise URLLIB3_IMPORT_ERROR
        configuration = build_configuration(resolve_connection_options(options))
        if isinstance(configuration, Configuration):
            api_client = ApiClient(configuration)
        else:
            # Loaded by the kubernetes client (exec or auth-provider user), which is imported by now.
            import kubernetes.client  # pylint: disable=import-outside-toplevel

            api_client = kubernetes.client.ApiClient(configuration)
        return cls(api_client, retry=retry, request_timeout=request_timeout, resources=resources)

    @property
    def host(self) -> str:
        return self.configuration.host

    def close(self) -> None:
        """Release pooled connections."""
        self.api_client.rest_client.pool_manager.clear()

    # -- resources ---------------------------------------------------------------

    def register(self, resource: Resource) -> Resource:
        """Teach the client a kind, so it needs no discovery for it."""
        self._resources[(resource.api_version, resource.kind)] = resource
        return resource

    def resource(self, api_version: str, kind: str) -> Resource:
        """The Resource for apiVersion/kind; discovery only for unknown kinds, once per group version."""
        key = (api_version, kind)
        group, sep, version = api_version.rpartition("/")
        contract_kind = sep and version == API_VERSION and kind in (COMPUTE_INSTANCE_KIND, TENANT_KIND)
        if key not in self._resources and contract_kind:
            # The contract fixes these kinds' plurals in any group (docs/contract.md, Resources): no discovery.
            for resource in contract_resources(Names(group)):
                self.register(resource)
        if key not in self._resources and api_version not in self._discovered:
            self._discover(api_version)
        try:
            return self._resources[key]
        except KeyError:
            raise NotFound(
                f"the server has no resource for kind {kind} in {api_version}", status=404, reason="NotFound"
            ) from None

    def _discover(self, api_version):
        self._discovered.add(api_version)
        prefix = "/apis/" if "/" in api_version else "/api/"
        try:
            listing = self.request("GET", prefix + api_version)
        except NotFound:
            return
        subresources = set()
        for entry in listing.get("resources", []):
            main, _sep, sub = entry["name"].partition("/")
            if sub == "status":
                subresources.add(main)
        for entry in listing.get("resources", []):
            if "/" in entry["name"]:
                continue
            resource = Resource(
                api_version, entry["kind"], entry["name"], entry.get("namespaced", True), entry["name"] in subresources
            )
            self._resources.setdefault((api_version, entry["kind"]), resource)

    # -- transport -----------------------------------------------------------------

    def url(self, path: str, query: Optional[Mapping[str, Any]] = None) -> str:
        query = {k: v for k, v in (query or {}).items() if v is not None}
        for key, value in query.items():
            if isinstance(value, bool):
                query[key] = "true" if value else "false"
        return self.configuration.host + path + ("?" + urlencode(query) if query else "")

    def _send(self, method, url, body, headers, timeout, stream):
        pool = self.api_client.rest_client.pool_manager
        try:
            return pool.request(
                method, url, body=body, headers=headers, timeout=timeout, preload_content=not stream, retries=False
            )
        except urllib3.exceptions.HTTPError as exc:
            raise TransportError(f"{method} {url.split('?')[0]}: {exc}", reason="TransportError") from exc

    def request(
        self,
        method: str,
        path: str,
        query: Optional[Mapping[str, Any]] = None,
        body: Any = None,
        content_type: Optional[str] = None,
        timeout: Any = None,
        stream: bool = False,
    ) -> Any:
        """One API call with retries; returns the decoded JSON (or the raw response when stream=True).

        Retries answer 429/5xx/no-connection only; a retried create that finds
        its own earlier attempt committed surfaces as AlreadyExists.
        """
        url = self.url(path, query)
        payload = None
        if body is not None:
            payload = body if isinstance(body, (bytes, str)) else json.dumps(body)
            content_type = content_type or "application/json"
        timeout = self.request_timeout if timeout is None else timeout

        def attempt():
            response = self._send(
                method, url, payload, request_headers(self.configuration, content_type), timeout, stream
            )
            if response.status < 400:
                if stream:
                    return response
                return json.loads(response.data) if response.data else {}
            data = response.read() if stream else response.data
            if stream:
                response.release_conn()
            raise error_from_response(response.status, data, response.reason, response.headers)

        return self.retry.run(attempt, ServerError)

    # -- verbs ---------------------------------------------------------------------

    def _guard(self) -> None:
        if self.before_write is not None:
            self.before_write()

    def get(
        self, resource: Resource, name: str, namespace: Optional[str] = None, subresource: Optional[str] = None
    ) -> KubeObject:
        return self.request("GET", resource.path(namespace, name, subresource))

    def get_or_none(self, resource: Resource, name: str, namespace: Optional[str] = None) -> Optional[KubeObject]:
        try:
            return self.get(resource, name, namespace)
        except NotFound:
            return None

    def list(
        self,
        resource: Resource,
        namespace: Optional[str] = None,
        label_selector: Optional[str] = None,
        field_selector: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> dict[str, Any]:
        """All items (following `continue`), with the list's resourceVersion."""
        query = {"labelSelector": label_selector, "fieldSelector": field_selector, "limit": limit}
        items = []
        while True:
            page = self.request("GET", resource.path(namespace), query)
            items.extend(page_items(resource, page))
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return {"items": items, "resource_version": (page.get("metadata") or {}).get("resourceVersion")}
            query["continue"] = token

    def create(
        self, resource: Resource, body: KubeObject, namespace: Optional[str] = None, dry_run: bool = False
    ) -> KubeObject:
        self._guard()
        namespace = namespace or (body.get("metadata") or {}).get("namespace")
        return self.request("POST", resource.path(namespace), {"dryRun": "All" if dry_run else None}, body)

    def replace(
        self, resource: Resource, body: KubeObject, namespace: Optional[str] = None, subresource: Optional[str] = None
    ) -> KubeObject:
        self._guard()
        metadata = body.get("metadata") or {}
        namespace = namespace or metadata.get("namespace")
        return self.request("PUT", resource.path(namespace, metadata["name"], subresource), None, body)

    def patch(
        self,
        resource: Resource,
        name: str,
        patch: Union[KubeObject, list[Any]],
        namespace: Optional[str] = None,
        patch_type: str = "merge",
        subresource: Optional[str] = None,
        field_manager: Optional[str] = None,
        force: Optional[bool] = None,
    ) -> KubeObject:
        self._guard()
        if patch_type not in PATCH_CONTENT_TYPES:
            raise ValueError(f"patch_type must be one of {', '.join(sorted(PATCH_CONTENT_TYPES))}")
        if patch_type == "apply" and not field_manager:
            raise ValueError("a server-side apply needs a field_manager")
        query = {"fieldManager": field_manager, "force": force}
        path = resource.path(namespace, name, subresource)
        return self.request("PATCH", path, query, patch, PATCH_CONTENT_TYPES[patch_type])

    def delete(
        self,
        resource: Resource,
        name: str,
        namespace: Optional[str] = None,
        propagation_policy: str = "Background",
        preconditions: Optional[dict[str, str]] = None,
    ) -> KubeObject:
        """DELETE; returns the API's answer (the object while finalizers hold it, else a Status)."""
        self._guard()
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation_policy}
        if preconditions:
            body["preconditions"] = preconditions
        return self.request("DELETE", resource.path(namespace, name), None, body)

    def watch(
        self,
        resource: Resource,
        namespace: Optional[str] = None,
        resource_version: Optional[str] = None,
        label_selector: Optional[str] = None,
        field_selector: Optional[str] = None,
        timeout_seconds: Optional[int] = 60,
        allow_bookmarks: bool = True,
    ) -> Iterator[KubeObject]:
        """Yield watch events (dicts with type and object) until the server ends the stream.

        An ERROR event carrying 410 raises Gone, so callers relist; the
        stream's read timeout is a little longer than the server-side timeout.
        """
        query = {
            "watch": "true",
            "resourceVersion": resource_version,
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "timeoutSeconds": timeout_seconds,
            "allowWatchBookmarks": allow_bookmarks,
        }
        timeout = urllib3.Timeout(connect=self.request_timeout, read=(timeout_seconds or 0) + self.request_timeout)
        response = self.request("GET", resource.path(namespace), query, timeout=timeout, stream=True)
        try:
            decoder = WatchDecoder()
            for chunk in response.stream(65536, decode_content=True):
                yield from decoder.feed(chunk)
            yield from decoder.close()
        except (urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError) as exc:
            raise TransportError(f"watch of {resource.plural} ended abruptly: {exc}", reason="TransportError") from exc
        finally:
            response.release_conn()
