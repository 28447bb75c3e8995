# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""ansible-rulebook event source: watch ComputeInstances and emit provision/deprovision events.

The pull alternative to the operator's webhook pushes: the decision what an
instance needs is ComputeInstance.needed_action() from the collection's
module_utils, the very code the playbooks use, so both ways agree.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.machinery
import importlib.util
import json
import logging
import os
import sys
from datetime import datetime, timezone

import aiohttp
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import UnsupportedError
from ansible.module_utils.parsing.convert_bool import boolean

DOCUMENTATION = r"""
---
short_description: Watch cloudkit ComputeInstances and emit the action each one needs.
description:
  - An ansible-rulebook event source that lists, then watches, C(ComputeInstance) resources and puts one event on
    the queue per action the Ansible side has to take, decided exactly as the collection's playbooks decide it
    (C(ComputeInstance.needed_action()) in C(plugins/module_utils/computeinstance.py)).
  - C(provision) when C(status.desiredConfigVersion) differs from the C(<group>/reconciled-config-version) annotation
    and the instance is not being deleted; C(deprovision) when it is being deleted and the
    C(<group>/computeinstance-aap)
    finalizer is present. Instances whose C(<group>/management-state) annotation is C(manual) or C(unmanaged), and
    instances that need nothing (for example the annotation catching up after a provision), emit nothing.
  - Each action is emitted once per instance uid and desired config version (provision) or deletion timestamp
    (deprovision), also across reconnects and relists after C(410 Gone); it is emitted again only after the instance was
    seen needing nothing in between. A failed job is therefore not retried by this source until the spec changes or the
    source restarts (the operator's own retry covers the webhook path). What it remembers is bounded by the live
    instances; uids are forgotten when DELETED, or when a relist no longer finds them.
  - The event is C({action, reason, instance, identity, payload}) where C(instance) and C(payload) are both the whole
    object, so C(run_job_template) hands a job C(ansible_eda.event.payload) exactly as for the operator's webhook.
    C(identity) is C({namespace, name, uid, resource_version, desired_config_version, api_group}).
  - With O(raw_events=true) every watch notification is also emitted as C({type, instance, identity}) with C(type)
    one of C(ADDED), C(MODIFIED), C(DELETED) (a relist reports instances it finds as C(ADDED) or C(MODIFIED) and
    those it no longer finds as C(DELETED)). With O(heartbeat) set, a C(heartbeat) event (counts, connection state,
    resourceVersions) is emitted that often.
  - HTTP is asynchronous (aiohttp); the connection options are those of kubernetes.core and of this collection's
    modules, with the same C(K8S_AUTH_*) environment fallbacks, and are loaded, validated (ansible-core's
    C(ArgumentSpecValidator)) and applied (TLS, proxy and C(no_proxy), credentials, errors) by the modules' own code.
    Errors and cut streams are retried with jittered exponential backoff; C(401) and C(403) stop the source, as
    retrying cannot fix credentials.
options:
  namespaces:
    description:
      - Namespaces to watch, as a list or a comma-separated string. Omitted or empty watches all namespaces.
    type: list
    elements: str
    aliases: [namespace]
  label_selector:
    description:
      - Only instances matching this label selector.
    type: str
  api_group:
    description:
      - API group of the ComputeInstance CRD; every finalizer and annotation name derives from it.
    type: str
    default: cloudkit.openshift.io
  raw_events:
    description:
      - Also emit every raw ADDED/MODIFIED/DELETED notification.
    type: bool
    default: false
  heartbeat:
    description:
      - Seconds between heartbeat events; 0 disables them.
    type: float
    default: 0
  watch_timeout:
    description:
      - Server-side timeout of one watch request in seconds; the source then resumes from the last resourceVersion.
    type: int
    default: 300
  request_timeout:
    description:
      - Seconds to connect, and to wait for a list page; a watch may stay silent for O(watch_timeout) plus this.
    type: float
    default: 30
  page_size:
    description:
      - Items per list page.
    type: int
    default: 500
  reconnect_delay:
    description:
      - Base of the jittered exponential backoff after an error, in seconds.
    type: float
    default: 1
  reconnect_max_delay:
    description:
      - Ceiling of that backoff, in seconds.
    type: float
    default: 30
  kubeconfig:
    description:
      - Path to a kubeconfig, or the kubeconfig as a dictionary. Falls back to E(K8S_AUTH_KUBECONFIG), then the
        in-cluster service account, then C(~/.kube/config).
    type: raw
  context:
    description:
      - Kubeconfig context to use. Falls back to E(K8S_AUTH_CONTEXT).
    type: str
  host:
    description:
      - API server URL. Falls back to E(K8S_AUTH_HOST).
    type: str
  api_key:
    description:
      - Bearer token. Falls back to E(K8S_AUTH_API_KEY).
    type: str
  validate_certs:
    description:
      - Verify the API server's certificate. Falls back to E(K8S_AUTH_VERIFY_SSL).
    type: bool
    aliases: [verify_ssl]
  ca_cert:
    description:
      - CA bundle to verify the API server with. Falls back to E(K8S_AUTH_SSL_CA_CERT).
    type: path
    aliases: [ssl_ca_cert]
  client_cert:
    description:
      - Client certificate. Falls back to E(K8S_AUTH_CERT_FILE).
    type: path
    aliases: [cert_file]
  client_key:
    description:
      - Client certificate key. Falls back to E(K8S_AUTH_KEY_FILE).
    type: path
    aliases: [key_file]
  proxy:
    description:
      - HTTP proxy URL. Falls back to E(K8S_AUTH_PROXY).
    type: str
  no_proxy:
    description:
      - Comma-separated hosts, domain suffixes, C(host:port), CIDRs (C(10.0.0.0/8)) or C(*) that bypass O(proxy), as
        for the collection's modules. Falls back to E(K8S_AUTH_NO_PROXY).
    type: str
"""

EXAMPLES = r"""
- name: Provision and deprovision ComputeInstances
  hosts: all
  sources:
    - cloudkit.provisioning.computeinstances:
        namespaces: [tenant-a, tenant-b]
        api_group: osac.openshift.io
        label_selector: env=prod
        heartbeat: 60
  rules:
    - name: Deprovision
      condition: event.action == "deprovision"
      action:
        run_job_template:
          name: innabox-delete-compute-instance
          organization: innabox

- name: Everything, from inside the cluster, with raw notifications
  hosts: all
  sources:
    - cloudkit.provisioning.computeinstances:
        raw_events: true
  rules:
    - name: Show raw notifications
      condition: event.type is defined
      action:
        debug:
"""

# A fixed name: ansible-rulebook runs this file with runpy, where __name__ is "<run_path>".
LOG = logging.getLogger("cloudkit.provisioning.computeinstances")

_EXTENSION_DEPTH = 4  # extensions/eda/plugins/event_source/<this file>


def _collection_root_candidates():
    """This file's collection root, as given and with symlinks resolved."""
    given = os.path.abspath(__file__)
    roots = []
    for path in (given, os.path.realpath(given)):
        root = path
        for _level in range(_EXTENSION_DEPTH + 1):
            root = os.path.dirname(root)
        if root not in roots:
            roots.append(root)
    return roots


def _make_collection_importable():
    """Make ansible_collections.cloudkit.provisioning importable from this file's own collection.

    ansible-rulebook runs sources with runpy.run_path and does not put the
    collections path on sys.path; Python needs the parent of ansible_collections/
    there. A checkout that is not laid out as ansible_collections/cloudkit/provisioning
    (a manual run from a git clone) gets the packages registered directly.
    """
    roots = _collection_root_candidates()
    for root in roots:
        parts = root.split(os.sep)
        if parts[-3:-1] == ["ansible_collections", "cloudkit"] and parts[-1] == "provisioning":
            base = os.sep.join(parts[:-3]) or os.sep
            if base not in sys.path:
                sys.path.append(base)
            importlib.invalidate_caches()
            return
    for name, location in (
        ("ansible_collections", None),
        ("ansible_collections.cloudkit", None),
        ("ansible_collections.cloudkit.provisioning", roots[0]),
    ):
        if name in sys.modules:
            continue
        if location is None:
            try:
                importlib.import_module(name)
                continue
            except ImportError:
                pass
        spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
        spec.submodule_search_locations = [location] if location else []
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        parent, _dot, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, module)


def _load_module_utils():
    return [
        importlib.import_module("ansible_collections.cloudkit.provisioning.plugins.module_utils." + name)
        for name in ("computeinstance", "kube", "kube_errors", "kube_resources", "kubeconfig", "names", "retry")
    ]


def _import_module_utils():
    try:
        return _load_module_utils()
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("ansible_collections"):
            raise
    _make_collection_importable()
    return _load_module_utils()


computeinstance, kube, kube_errors, kube_resources, kubeconfig, names_utils, retry = _import_module_utils()


def _namespaces(value):
    if value in (None, "", []):
        return [None]
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(item, str) for item in items):
        raise ValueError(f"namespaces must be a list of names or a comma-separated string, got {value!r}")
    found = []
    for item in items:
        if item.strip() and item.strip() not in found:
            found.append(item.strip())
    return found or [None]


_namespaces.__name__ = "a list of namespaces"


def _boolean(field):
    def convert(value):
        try:
            return boolean(value, strict=True)
        except TypeError:
            raise ValueError(f"{field} must be a boolean, got {value!r}") from None

    convert.__name__ = "bool"
    return convert


def _number(field, kind, minimum):
    def convert(value):
        try:
            number = kind(value)
        except (TypeError, ValueError):
            raise ValueError(f"{field} must be a number, got {value!r}") from None
        if isinstance(value, bool) or number < minimum:
            raise ValueError(f"{field} must be a number >= {minimum}, got {value!r}")
        return number

    convert.__name__ = f"{kind.__name__} >= {minimum}"
    return convert


# The source's own arguments (rulebook variables arrive as strings, hence the converters); the connection
# options and their K8S_AUTH_* fallbacks are the modules' own (kubeconfig.auth_argument_spec()).
SOURCE_ARGUMENT_SPEC = {
    "namespaces": {"type": _namespaces, "aliases": ["namespace"]},
    "label_selector": {"type": "str"},
    "api_group": {"type": "str", "default": names_utils.DEFAULT_API_GROUP},
    "raw_events": {"type": _boolean("raw_events"), "default": False},
    "heartbeat": {"type": _number("heartbeat", float, 0.0), "default": 0},
    "watch_timeout": {"type": _number("watch_timeout", int, 1), "default": 300},
    "request_timeout": {"type": _number("request_timeout", float, 0.1), "default": 30.0},
    "page_size": {"type": _number("page_size", int, 1), "default": 500},
    "reconnect_delay": {"type": _number("reconnect_delay", float, 0.0), "default": 1.0},
    "reconnect_max_delay": {"type": _number("reconnect_max_delay", float, 0.0), "default": 30.0},
}
_SOURCE_DEFAULTS = {option: spec.get("default") for option, spec in SOURCE_ARGUMENT_SPEC.items()}


def argument_spec():
    """The source's arguments and the connection options, for ArgumentSpecValidator."""
    spec = dict(SOURCE_ARGUMENT_SPEC)
    spec.update(kubeconfig.auth_argument_spec())
    return spec


def _given_twice(spec, args):
    """Options given under more than one of their names (ArgumentSpecValidator only warns and keeps one)."""
    for option, settings in spec.items():
        given = [name for name in [option] + list(settings.get("aliases") or []) if args.get(name) is not None]
        if len(given) > 1:
            raise ValueError(f"{option} is given twice: {' and '.join(given)} are the same option; give one")


class Settings:
    """The source's arguments, checked and typed by ansible-core's ArgumentSpecValidator, as a module's are."""

    def __init__(self, args):
        # ansible-rulebook adds eda_* arguments of its own (eda_feedback_queue).
        args = {key: value for key, value in (args or {}).items() if not key.startswith("eda_")}
        spec = argument_spec()
        _given_twice(spec, args)
        result = ArgumentSpecValidator(spec).validate(args)
        problems = []
        for error in result.errors.errors:
            if isinstance(error, UnsupportedError):
                known = ", ".join(sorted(spec))
                problems.append(
                    f"unknown argument(s): {', '.join(sorted(result.unsupported_parameters))}; known: {known}"
                )
            else:
                problems.append(error.msg)
        if problems:
            raise ValueError("; ".join(problems))
        values = result.validated_parameters
        self.names = names_utils.Names(values["api_group"])
        self.namespaces = values["namespaces"] or [None]
        self.label_selector = values["label_selector"] or None
        self.raw_events = values["raw_events"]
        self.heartbeat = values["heartbeat"]
        self.watch_timeout = values["watch_timeout"]
        self.request_timeout = values["request_timeout"]
        self.page_size = values["page_size"]
        self.reconnect_delay = values["reconnect_delay"]
        self.reconnect_max_delay = values["reconnect_max_delay"]
        self.connection = {option: values.get(option) for option in kubeconfig.AUTH_ARG_SPEC}


def identity(instance):
    """Who an event is about (a ComputeInstance from module_utils)."""
    return {
        "namespace": instance.namespace,
        "name": instance.name,
        "uid": instance.uid,
        "resource_version": instance.metadata.get("resourceVersion"),
        "desired_config_version": instance.desired_config_version,
        "api_group": instance.names.api_group,
    }


def action_event(instance, action, reason):
    """The event for one needed action; payload is the object, as in the operator's webhook body."""
    return {
        "action": action,
        "reason": reason,
        "instance": instance.obj,
        "identity": identity(instance),
        "payload": instance.obj,
    }


def raw_event(kind, instance):
    """The event for one raw watch notification."""
    return {"type": kind, "instance": instance.obj, "identity": identity(instance)}


def _integer_version(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class _Seen:
    """What is remembered of one instance uid."""

    __slots__ = ("namespace", "name", "resource_version", "emitted")

    def __init__(self, namespace, name):
        self.namespace = namespace
        self.name = name
        self.resource_version = None
        self.emitted = None


class InstanceTracker:
    """Decides which events to emit for each observed state, emitting each needed action once.

    The action comes from ComputeInstance.needed_action(); an action is keyed
    by (uid, action, desired config version) or (uid, action, deletionTimestamp)
    and not emitted again while that key stands. Seeing the instance need
    nothing clears its key, so a later regression is a new need. Memory holds
    one small record per live uid.
    """

    def __init__(self, names):
        self.names = names
        self._seen = {}

    def __len__(self):
        return len(self._seen)

    def __contains__(self, uid):
        return uid in self._seen

    def observe(self, obj):
        """(instance, action event or None, whether this state is newer than the last one seen) for ADDED/MODIFIED."""
        instance = computeinstance.ComputeInstance(obj, self.names)
        uid = instance.uid
        if not uid:
            return instance, None, False
        seen = self._seen.get(uid)
        if seen is None:
            seen = self._seen[uid] = _Seen(instance.namespace, instance.name)
        version = instance.metadata.get("resourceVersion")
        old, new = _integer_version(seen.resource_version), _integer_version(version)
        if old is not None and new is not None and new <= old:
            # A replay of a state already seen (a watch resumed from an older list page).
            return instance, None, False
        seen.resource_version = version
        action, reason = instance.needed_action()
        if action == "none":
            seen.emitted = None
            return instance, None, True
        key = (
            action,
            instance.metadata.get("deletionTimestamp") if action == "deprovision" else instance.desired_config_version,
        )
        if seen.emitted == key:
            return instance, None, True
        seen.emitted = key
        return instance, action_event(instance, action, reason), True

    def forget(self, uid):
        """Drop an instance (it was DELETED)."""
        self._seen.pop(uid, None)

    def prune(self, namespace, keep):
        """Forget the uids of `namespace` (None: all) that a relist did not return; returns their identities."""
        gone = [
            uid
            for uid, seen in self._seen.items()
            if (namespace is None or seen.namespace == namespace) and uid not in keep
        ]
        identities = []
        for uid in gone:
            seen = self._seen.pop(uid)
            identities.append(
                {
                    "namespace": seen.namespace,
                    "name": seen.name,
                    "uid": uid,
                    "resource_version": seen.resource_version,
                    "desired_config_version": None,
                    "api_group": self.names.api_group,
                }
            )
        return identities


class _Connection:
    """One aiohttp session to the API server, with the client's own TLS, proxy, header and error handling."""

    def __init__(self, configuration, settings):
        self.configuration = configuration
        self.settings = settings
        self.ssl = kube.ssl_context(configuration)
        self.proxy = kubeconfig.proxy_for(configuration)
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self.ssl if self.ssl is not None else False)
        )

    async def close(self):
        await self.session.close()

    async def get(self, path, query, timeout):
        """A response (the caller closes it) or a typed KubeError for an error answer."""
        # request_headers() also runs a kubeconfig token-refresh hook, hence per request and off the loop.
        headers = await asyncio.to_thread(kube.request_headers, self.configuration)
        query = {key: value for key, value in query.items() if value is not None}
        response = await self.session.get(
            self.configuration.host + path,
            params=query,
            headers=headers,
            timeout=timeout,
            proxy=self.proxy,
            server_hostname=self.configuration.tls_server_name or None,
        )
        if response.status >= 400:
            try:
                data = await response.read()
            finally:
                response.release()
            raise kube_errors.error_from_response(response.status, data, response.reason, response.headers)
        return response


class ComputeInstanceSource:
    """List then watch each namespace scope, feeding the queue."""

    def __init__(self, queue, settings):
        self.queue = queue
        self.settings = settings
        self.tracker = InstanceTracker(settings.names)
        self.resource = kube_resources.contract_resources(settings.names)[0]
        self.retry = retry.Retry(
            attempts=1, base_delay=settings.reconnect_delay, max_delay=settings.reconnect_max_delay
        )
        self.connection = None
        self.versions = dict((scope, None) for scope in settings.namespaces)
        self.connected = dict((scope or "", False) for scope in settings.namespaces)
        self.received = dict((scope, 0) for scope in settings.namespaces)

    async def run(self):
        configuration = await asyncio.to_thread(kubeconfig.build_configuration, self.settings.connection)
        self.connection = _Connection(configuration, self.settings)
        tasks = [asyncio.create_task(self._scope(scope)) for scope in self.settings.namespaces]
        if self.settings.heartbeat:
            tasks.append(asyncio.create_task(self._heartbeat()))
        try:
            # The first task to fail stops the source; the others are cancelled below.
            done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.connection.close()

    async def _heartbeat(self):
        while True:
            await asyncio.sleep(self.settings.heartbeat)
            await self.queue.put(
                {
                    "heartbeat": {
                        "time": datetime.now(timezone.utc).isoformat(),
                        "api_group": self.settings.names.api_group,
                        "namespaces": [scope for scope in self.settings.namespaces if scope] or None,
                        "instances": len(self.tracker),
                        "connected": dict(self.connected),
                        "resource_versions": dict((scope or "", version) for scope, version in self.versions.items()),
                    }
                }
            )

    async def _scope(self, namespace):
        """List, then watch from the list's resourceVersion; relist on 410, back off after errors."""
        failures = 0
        label = namespace or "all namespaces"
        while True:
            received = self.received[namespace]
            try:
                if self.versions[namespace] is None:
                    self.versions[namespace] = await self._relist(namespace)
                await self._watch(namespace)
                failures = 0
            except kube_errors.Gone as exc:
                LOG.info("watch of ComputeInstances in %s expired (%s); relisting", label, exc.message)
                self.versions[namespace] = None
            except (kube_errors.Unauthorized, kube_errors.Forbidden) as exc:
                raise RuntimeError(f"ComputeInstances in {label}: {exc.message} (HTTP {exc.status})") from exc
            except (kube_errors.KubeError, aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
                # A watch that was streaming counts as a fresh start: a server cutting
                # long streams now and then must not push the backoff up.
                failures = 1 if self.received[namespace] > received else failures + 1
                self.connected[namespace or ""] = False
                delay = self.retry.delay(failures)
                LOG.warning(
                    "ComputeInstances in %s: %s: %s; reconnecting in %.1fs", label, type(exc).__name__, exc or "", delay
                )
                await asyncio.sleep(delay)

    async def _relist(self, namespace):
        query = {"labelSelector": self.settings.label_selector, "limit": self.settings.page_size}
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.settings.request_timeout, sock_read=self.settings.request_timeout
        )
        keep = set()
        version = None
        while True:
            response = await self.connection.get(self.resource.path(namespace), query, timeout)
            try:
                page = await response.json(content_type=None)
            finally:
                response.release()
            metadata = page.get("metadata") or {}
            # The first page's version: a watch from there may replay a change, never miss one.
            version = version or metadata.get("resourceVersion")
            for obj in kube.page_items(self.resource, page):
                uid = (obj.get("metadata") or {}).get("uid")
                known = uid in self.tracker
                keep.add(uid)
                await self._observe("MODIFIED" if known else "ADDED", obj)
            if not metadata.get("continue"):
                break
            query["continue"] = metadata["continue"]
        for gone in self.tracker.prune(namespace, keep):
            if self.settings.raw_events:
                # Deleted while no watch was open: its final state is unknown, as client-go's informers say too.
                await self.queue.put({"type": "DELETED", "instance": None, "identity": gone})
        self.connected[namespace or ""] = True
        return version

    async def _watch(self, namespace):
        """Stream one watch from the scope's resourceVersion until the server ends it."""
        query = {
            "watch": "true",
            "resourceVersion": self.versions[namespace],
            "labelSelector": self.settings.label_selector,
            "timeoutSeconds": self.settings.watch_timeout,
            "allowWatchBookmarks": "true",
        }
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=self.settings.request_timeout,
            sock_read=self.settings.watch_timeout + self.settings.request_timeout,
        )
        response = await self.connection.get(self.resource.path(namespace), query, timeout)
        self.connected[namespace or ""] = True
        try:
            decoder = kube.WatchDecoder()  # an ERROR event is raised as its typed error (410 Gone: relist)
            async for chunk in response.content.iter_any():
                for event in decoder.feed(chunk):
                    await self._event(namespace, event)
            for event in decoder.close():
                await self._event(namespace, event)
        finally:
            response.release()

    async def _event(self, namespace, event):
        kind = event.get("type")
        self.received[namespace] += 1
        obj = event.get("object") or {}
        self.versions[namespace] = (obj.get("metadata") or {}).get("resourceVersion") or self.versions[namespace]
        if kind in ("ADDED", "MODIFIED"):
            await self._observe(kind, obj)
        elif kind == "DELETED":
            instance = computeinstance.ComputeInstance(obj, self.settings.names)
            self.tracker.forget(instance.uid)
            if self.settings.raw_events:
                await self.queue.put(raw_event(kind, instance))

    async def _observe(self, kind, obj):
        instance, event, fresh = self.tracker.observe(obj)
        if self.settings.raw_events and fresh:
            await self.queue.put(raw_event(kind, instance))
        if event is not None:
            LOG.info("%s %s/%s: %s", event["action"], instance.namespace, instance.name, event["reason"])
            await self.queue.put(event)


async def main(queue: asyncio.Queue, args: dict):
    """Watch ComputeInstances and put the needed actions on the queue until cancelled."""
    await ComputeInstanceSource(queue, Settings(args)).run()


if __name__ == "__main__":
    # Manual run: python computeinstances.py '{"namespaces": ["tenants"], "heartbeat": 10}'

    class MockQueue(asyncio.Queue):
        """Prints events instead of queueing them."""

        async def put(self, item):
            print(json.dumps(item, sort_keys=True), flush=True)

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    try:
        asyncio.run(main(MockQueue(), json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}))
    except KeyboardInterrupt:
        pass
