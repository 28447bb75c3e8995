# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""One way to talk to the Kubernetes API for every module and the event source.

The connection options are kubernetes.core's (same names, aliases and
K8S_AUTH_* environment fallbacks) so users set them once with module_defaults.
Requests go straight to REST paths built from a static table of the kinds this
collection uses, so the hot path makes no discovery round trips; discovery is
only the fallback for a kind the table does not know, once per client.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import json
import os
import random
import ssl
import tempfile
import time

from urllib.parse import quote, unquote, urlencode, urlsplit

# The kubernetes package is deliberately not imported here: it costs 0.2 s or more
# in every module run. Kubeconfigs, host/api_key and the in-cluster service account
# are handled below; only exec and auth-provider users import it (_kubernetes_configuration).
URLLIB3_IMPORT_ERROR = None
try:
    import urllib3
except ImportError as exc:  # guarded so modules can report it with missing_required_lib
    urllib3 = None
    URLLIB3_IMPORT_ERROR = exc

from ansible_collections.cloudkit.provisioning.plugins.module_utils.names import (
    API_VERSION,
    COMPUTE_INSTANCE_KIND,
    COMPUTE_INSTANCE_PLURAL,
    Names,
    TENANT_KIND,
    TENANT_PLURAL,
    USER_AGENT,
)

# Connection options, exactly kubernetes.core's names and aliases.
AUTH_ARG_SPEC = {
    "kubeconfig": {"type": "raw", "no_log": True},
    "context": {"type": "str"},
    "host": {"type": "str"},
    "api_key": {"type": "str", "no_log": True},
    "validate_certs": {"type": "bool", "aliases": ["verify_ssl"]},
    "ca_cert": {"type": "path", "aliases": ["ssl_ca_cert"]},
    "client_cert": {"type": "path", "aliases": ["cert_file"]},
    "client_key": {"type": "path", "aliases": ["key_file"], "no_log": False},
    "proxy": {"type": "str"},
    "no_proxy": {"type": "str"},
}

# Environment fallback of each option (kubernetes.core reads the same variables).
AUTH_ENV = {
    "kubeconfig": "K8S_AUTH_KUBECONFIG",
    "context": "K8S_AUTH_CONTEXT",
    "host": "K8S_AUTH_HOST",
    "api_key": "K8S_AUTH_API_KEY",
    "validate_certs": "K8S_AUTH_VERIFY_SSL",
    "ca_cert": "K8S_AUTH_SSL_CA_CERT",
    "client_cert": "K8S_AUTH_CERT_FILE",
    "client_key": "K8S_AUTH_KEY_FILE",
    "proxy": "K8S_AUTH_PROXY",
    "no_proxy": "K8S_AUTH_NO_PROXY",
}

# Option name -> Configuration attribute (the same as kubernetes.client.Configuration's).
_CONFIGURATION_ATTRIBUTE = {
    "host": "host",
    "validate_certs": "verify_ssl",
    "ca_cert": "ssl_ca_cert",
    "client_cert": "cert_file",
    "client_key": "key_file",
    "proxy": "proxy",
    "no_proxy": "no_proxy",
}

_FALSE_STRINGS = ("0", "false", "no", "off", "n")

DEFAULT_REQUEST_TIMEOUT = 30.0


PATCH_CONTENT_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}


def auth_argument_spec():
    """The connection options with their environment fallbacks, for AnsibleModule."""
    from ansible.module_utils.basic import env_fallback

    spec = {}
    for option, settings in AUTH_ARG_SPEC.items():
        spec[option] = dict(settings, fallback=(env_fallback, [AUTH_ENV[option]]))
    return spec


def resolve_connection_options(options=None, environ=None):
    """Apply the K8S_AUTH_* fallbacks to options given as a plain dict.

    Modules get this from their argument spec; the event source and test code
    call it directly. Explicit values always win over the environment.
    """
    options = dict(options or {})
    environ = os.environ if environ is None else environ
    resolved = {}
    for option in AUTH_ARG_SPEC:
        value = options.get(option)
        if value is None:
            value = environ.get(AUTH_ENV[option]) or None
            if value is not None and AUTH_ARG_SPEC[option].get("type") == "bool":
                value = value.strip().lower() not in _FALSE_STRINGS
        resolved[option] = value
    unknown = sorted(set(options) - set(AUTH_ARG_SPEC))
    if unknown:
        raise ValueError("unknown connection option(s): %s" % ", ".join(unknown))
    return resolved


class KubeError(Exception):
    """An API error, with the API server's own Status message."""

    def __init__(self, message, status=None, reason=None, body=None):
        super(KubeError, self).__init__(message)
        self.message = message
        self.status = status
        self.reason = reason
        self.body = body

    def to_dict(self):
        """For module results: what failed and why, as the API said it."""
        return {"status": self.status, "reason": self.reason, "message": self.message}


class Unauthorized(KubeError):
    """401: the credentials were refused."""


class Forbidden(KubeError):
    """403: authenticated, but not allowed."""


class NotFound(KubeError):
    """404: the object (or its namespace, or its kind) does not exist."""


class Conflict(KubeError):
    """409: stale resourceVersion, or another writer got there first."""


class AlreadyExists(Conflict):
    """409 AlreadyExists on create."""


class Gone(KubeError):
    """410: a watch or list resourceVersion is too old."""


class Invalid(KubeError):
    """422: validation refused the object or the patch."""


class ServerError(KubeError):
    """429, 5xx, or no answer at all: worth retrying."""


class TransportError(ServerError):
    """No HTTP answer: connection refused, reset or timed out."""


def error_from_response(status, data, reason=None):
    """The typed error for an HTTP error answer (a Status body when the API sent one)."""
    body = None
    message = None
    if data:
        try:
            body = json.loads(data)
        except (TypeError, ValueError):
            body = None
        if isinstance(body, dict):
            message = body.get("message")
            reason = body.get("reason") or reason
        else:
            message = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
    message = message or reason or "HTTP %s" % status
    if status == 401:
        cls = Unauthorized
    elif status == 403:
        cls = Forbidden
    elif status == 404:
        cls = NotFound
    elif status == 409:
        cls = AlreadyExists if reason == "AlreadyExists" else Conflict
    elif status == 410:
        cls = Gone
    elif status in (400, 422):
        cls = Invalid
    elif status == 429 or status >= 500:
        cls = ServerError
    else:
        cls = KubeError
    return cls(message, status=status, reason=reason, body=body)


class Retry(object):
    """Bounded retries with full jitter for 429, 5xx and connection errors.

    A 429 or 503 with Retry-After waits at least that long (capped), as the
    API server's priority-and-fairness asks clients to. Eight attempts: a job
    sends some 30 requests, and a throttled or failing-over API server must
    not fail it where waiting ~15 s more would have done.
    """

    def __init__(self, attempts=8, base_delay=0.2, max_delay=5.0, sleep=time.sleep, rng=None):
        if attempts < 1:
            raise ValueError("attempts must be >= 1")
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.sleep = sleep
        self.rng = rng or random.Random()

    def delay(self, attempt, retry_after=None):
        """Seconds to wait before retry number `attempt` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        wait = self.rng.uniform(0, ceiling)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_delay))
        return wait


NO_RETRY = Retry(attempts=1)


class Resource(object):
    """Where a kind lives in the REST API."""

    __slots__ = ("api_version", "kind", "plural", "namespaced", "has_status")

    def __init__(self, api_version, kind, plural, namespaced=True, has_status=True):
        self.api_version = api_version
        self.kind = kind
        self.plural = plural
        self.namespaced = namespaced
        self.has_status = has_status

    @property
    def group(self):
        return self.api_version.rpartition("/")[0]

    def __repr__(self):
        return "Resource(%s, %s)" % (self.api_version, self.kind)

    def path(self, namespace=None, name=None, subresource=None):
        """REST path: /api/v1/namespaces/ns/secrets/name/status and the like."""
        prefix = "/apis/" if "/" in self.api_version else "/api/"
        parts = [prefix + self.api_version]
        if self.namespaced and namespace:
            parts.append("namespaces/" + quote(namespace, safe=""))
        elif self.namespaced and name:
            raise ValueError("%s %r is namespaced: a namespace is required" % (self.kind, name))
        parts.append(self.plural)
        if name:
            parts.append(quote(name, safe=""))
            if subresource:
                parts.append(subresource)
        return "/".join(parts)


# Every kind this collection touches; anything else is found by discovery once.
_STATIC_RESOURCES = [
    Resource("v1", "Namespace", "namespaces", namespaced=False),
    Resource("v1", "Secret", "secrets", has_status=False),
    Resource("v1", "ConfigMap", "configmaps", has_status=False),
    Resource("v1", "Service", "services"),
    Resource("v1", "Event", "events", has_status=False),
    Resource("v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    Resource("coordination.k8s.io/v1", "Lease", "leases", has_status=False),
    Resource("storage.k8s.io/v1", "StorageClass", "storageclasses", namespaced=False, has_status=False),
    Resource("kubevirt.io/v1", "VirtualMachine", "virtualmachines"),
    Resource("kubevirt.io/v1", "VirtualMachineInstance", "virtualmachineinstances"),
    Resource("cdi.kubevirt.io/v1beta1", "DataVolume", "datavolumes"),
    Resource("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", namespaced=False),
]
STATIC_RESOURCES = dict(((r.api_version, r.kind), r) for r in _STATIC_RESOURCES)


def contract_resources(names):
    """ComputeInstance and Tenant resources for the group of `names` (a Names)."""
    api_version = "%s/%s" % (names.api_group, API_VERSION)
    return [
        Resource(api_version, COMPUTE_INSTANCE_KIND, COMPUTE_INSTANCE_PLURAL),
        Resource(api_version, TENANT_KIND, TENANT_PLURAL),
    ]


class ConfigError(Exception):
    """The options, kubeconfig or in-cluster environment do not make a usable configuration."""


class KubernetesRequired(ConfigError):
    """The kubeconfig needs the kubernetes client (exec or auth-provider user) and it is not installed."""

    def __init__(self, message, import_error):
        super(KubernetesRequired, self).__init__(message)
        self.import_error = import_error


# Where a pod's service account credentials are mounted (a module attribute so tests can point it elsewhere).
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

# The kubernetes client and client-go re-read a projected service account token this often.
TOKEN_REFRESH_SECONDS = 60.0


class Configuration(object):
    """Connection settings, with the attribute names and auth_settings() of kubernetes.client.Configuration.

    KubeClient and the event source read only these, so they work the same with
    a configuration the kubernetes client loaded (the exec/auth-provider fallback).
    """

    def __init__(self):
        self.host = "http://localhost"
        self.verify_ssl = True
        self.ssl_ca_cert = None
        self.cert_file = None
        self.key_file = None
        self.assert_hostname = None
        self.tls_server_name = None
        self.proxy = None
        self.no_proxy = None
        self.proxy_headers = None
        self.api_key = {}
        self.api_key_prefix = {}
        # Called with the configuration before credentials are read, to renew them (in-cluster token).
        self.refresh_api_key_hook = None

    def auth_settings(self):
        """The Authorization header setting, in kubernetes.client.Configuration's shape."""
        if self.refresh_api_key_hook is not None:
            self.refresh_api_key_hook(self)
        value = self.api_key.get("authorization")
        if not value:
            return {}
        prefix = self.api_key_prefix.get("authorization")
        if prefix:
            value = "%s %s" % (prefix, value)
        return {"BearerToken": {"type": "api_key", "in": "header", "key": "authorization", "value": value}}


class ApiClient(object):
    """What KubeClient uses of kubernetes.client.ApiClient: the configuration and a urllib3 pool built from it."""

    def __init__(self, configuration):
        self.configuration = configuration
        self.rest_client = _RestClient(configuration)


class _RestClient(object):
    # kubernetes.client.ApiClient keeps its pool at api_client.rest_client.pool_manager; so do we.

    def __init__(self, configuration):
        self.pool_manager = pool_manager(configuration)


def pool_manager(configuration):
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
    proxy = configuration.proxy
    if not proxy or bypass_proxy(configuration.host, configuration.no_proxy):
        return urllib3.PoolManager(**pool_args)
    if urlsplit(proxy).scheme.lower().startswith("socks"):
        from urllib3.contrib.socks import SOCKSProxyManager  # pylint: disable=import-outside-toplevel
        return SOCKSProxyManager(proxy, headers=configuration.proxy_headers, **pool_args)
    headers = configuration.proxy_headers
    parts = urlsplit(proxy)
    if parts.username and not headers:
        # urllib3 sends no credentials from the proxy URL by itself; a kubeconfig proxy-url may carry them.
        headers = urllib3.util.make_headers(proxy_basic_auth="%s:%s" % (unquote(parts.username), unquote(parts.password or "")))
    return urllib3.ProxyManager(proxy, proxy_headers=headers, **pool_args)


def bypass_proxy(url, no_proxy):
    """Whether `url` matches the comma separated no_proxy rules (hosts, domain suffixes, host:port, CIDRs, *)."""
    if not no_proxy:
        return False
    import ipaddress  # pylint: disable=import-outside-toplevel  # only with no_proxy set
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host:
        return True
    host_and_port = parts.netloc.lower().rpartition("@")[2]
    try:
        host_ip = ipaddress.ip_address(host)
    except ValueError:
        host_ip = None
    for entry in (entry.strip().lower() for entry in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        if host_ip is not None:
            try:
                if host_ip in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
        entry = entry.lstrip(".")
        if host == entry or host.endswith("." + entry) or host_and_port == entry:
            return True
    return False


def build_configuration(options):
    """A Configuration from resolved connection options.

    Precedence follows kubernetes.core: host with a token (or a client
    certificate) needs no kubeconfig; otherwise a kubeconfig or context is
    loaded; with neither, the in-cluster service account, then ~/.kube/config.
    Explicit options then override whatever was loaded. A kubeconfig whose
    user is `exec` or `auth-provider` is loaded by the kubernetes client, and
    the result is then a kubernetes.client.Configuration (same attributes).
    """
    configuration = Configuration()
    host = options.get("host")
    if host:
        options = dict(options, host=host.rstrip("/"))
    self_sufficient = host and (options.get("api_key") or (options.get("client_cert") and options.get("client_key")))
    if not self_sufficient:
        kubeconfig = options.get("kubeconfig")
        context = options.get("context")
        if kubeconfig or context:
            configuration = _load_kubeconfig(configuration, kubeconfig, context)
        elif not _load_incluster(configuration):
            configuration = _load_kubeconfig(configuration, None, None)
    for option, attribute in _CONFIGURATION_ATTRIBUTE.items():
        value = options.get(option)
        if value is not None:
            setattr(configuration, attribute, value)
    if options.get("api_key"):
        configuration.api_key = {"authorization": "Bearer %s" % options["api_key"]}
        configuration.api_key_prefix = {}
        # A refresh hook (in-cluster token, exec plugin) would replace the explicit token.
        configuration.refresh_api_key_hook = None
    return configuration


def _read_token(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read().strip()


class _TokenFileRefresh(object):
    """Re-reads a service account token now and then: kubelet rotates projected tokens in place."""

    def __init__(self, path, clock=time.monotonic):
        self.path = path
        self.clock = clock
        self.read_at = clock()

    def __call__(self, configuration):
        if self.clock() - self.read_at < TOKEN_REFRESH_SECONDS:
            return
        self.read_at = self.clock()
        try:
            token = _read_token(self.path)
        except (IOError, OSError):
            return  # keep the token we have; the API answers 401 if it really expired
        if token:
            configuration.api_key = {"authorization": "Bearer %s" % token}


def _load_incluster(configuration, environ=None):
    """Configure the pod's service account; False (nothing changed) outside a cluster, as the kubernetes client decides."""
    environ = os.environ if environ is None else environ
    host = environ.get("KUBERNETES_SERVICE_HOST")
    port = environ.get("KUBERNETES_SERVICE_PORT")
    token_path = os.path.join(SERVICE_ACCOUNT_DIR, "token")
    ca_path = os.path.join(SERVICE_ACCOUNT_DIR, "ca.crt")
    if not host or not port or not os.path.isfile(token_path) or not os.path.isfile(ca_path):
        return False
    token = _read_token(token_path)
    if not token:
        return False
    if ":" in host or "%" in host:
        host = "[%s]" % host  # an IPv6 address
    configuration.host = "https://%s:%s" % (host, port)
    configuration.ssl_ca_cert = ca_path
    configuration.api_key = {"authorization": "Bearer %s" % token}
    configuration.refresh_api_key_hook = _TokenFileRefresh(token_path)
    return True


class _NeedsKubernetes(Exception):
    """A kubeconfig this module does not interpret itself (exec or auth-provider user, merged files)."""


def _load_kubeconfig(configuration, kubeconfig, context):
    """Configure from a kubeconfig (a dict, a path, else $KUBECONFIG or ~/.kube/config); may return a kubernetes Configuration."""
    if not isinstance(kubeconfig, dict):
        kubeconfig = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
    try:
        if isinstance(kubeconfig, dict):
            _apply_kubeconfig(configuration, kubeconfig, context, None)
        else:
            config, base_dir = _read_kubeconfig(kubeconfig)
            _apply_kubeconfig(configuration, config, context, base_dir)
    except _NeedsKubernetes:
        return _kubernetes_configuration(kubeconfig, context)
    return configuration


def _read_kubeconfig(path):
    paths = [part for part in path.split(os.pathsep) if part]
    if len(paths) > 1:
        raise _NeedsKubernetes()  # several files are merged, with rules the kubernetes client implements
    path = os.path.expanduser(paths[0] if paths else path)
    if not os.path.exists(path):
        raise ConfigError("Invalid kube-config file. No configuration found at %s." % path)
    import yaml  # pylint: disable=import-outside-toplevel  # PyYAML comes with ansible-core; not needed without a kubeconfig
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, "rb") as handle:
        config = yaml.load(handle, Loader=loader)  # nosec: a safe loader
    if not isinstance(config, dict):
        raise ConfigError("Invalid kube-config file %s. No configuration found." % path)
    return config, os.path.dirname(os.path.abspath(path))


def _named(config, section, name):
    """The entry `name` of a kubeconfig list such as clusters (its inner dict)."""
    key = section[:-1]  # clusters -> cluster
    for entry in config.get(section) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            return entry.get(key) or {}
    raise ConfigError("Invalid kube-config file. Expected object with name %s in %s list" % (name, section))


def _apply_kubeconfig(configuration, config, context, base_dir):
    """What the kubernetes client's KubeConfigLoader does, for the user kinds without code to run."""
    context = context or config.get("current-context")
    if not context:
        raise ConfigError("Invalid kube-config file. Expected key current-context in kube-config")
    selected = _named(config, "contexts", context)
    cluster = _named(config, "clusters", selected.get("cluster"))
    try:
        user = _named(config, "users", selected["user"]) if selected.get("user") else {}
    except ConfigError:
        user = {}  # the kubernetes client, too, goes on without credentials

    # The kubernetes client's order: auth-provider, token or tokenFile, exec, username/password.
    if "auth-provider" in user:
        raise _NeedsKubernetes()
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = _read_token(_kubeconfig_path(user["tokenFile"], base_dir))
    if token:
        configuration.api_key = {"authorization": "Bearer %s" % token}
    elif "exec" in user:
        raise _NeedsKubernetes()
    elif "username" in user and "password" in user:
        configuration.api_key = urllib3.util.make_headers(basic_auth="%s:%s" % (user["username"], user["password"]))

    if "server" in cluster:
        configuration.host = cluster["server"].rstrip("/")
        # Like the kubernetes client: certificates only mean something over TLS.
        if configuration.host.startswith("https"):
            configuration.ssl_ca_cert = _file_or_data(cluster, "certificate-authority", base_dir)
            configuration.cert_file = _file_or_data(user, "client-certificate", base_dir)
            configuration.key_file = _file_or_data(user, "client-key", base_dir)
    if "insecure-skip-tls-verify" in cluster:
        configuration.verify_ssl = not cluster["insecure-skip-tls-verify"]
    if "tls-server-name" in cluster:
        configuration.tls_server_name = cluster["tls-server-name"]
    if "proxy-url" in cluster:
        configuration.proxy = cluster["proxy-url"]


def _kubeconfig_path(path, base_dir):
    """Relative paths in a kubeconfig file are relative to its directory (a dict's to the working directory)."""
    path = os.path.expanduser(path)
    return os.path.join(base_dir, path) if base_dir else path


def _file_or_data(section, key, base_dir):
    """Path of `key`, or of a private temporary file holding the base64 `key`-data."""
    data = section.get(key + "-data")
    if data:
        return _temp_file(base64.standard_b64decode(data))
    if section.get(key):
        return _kubeconfig_path(section[key], base_dir)
    return None


_TEMP_FILES = {}


def _temp_file(content):
    """A 0600 file with `content` (once per content), removed when the process exits: urllib3 wants paths."""
    digest = hashlib.sha256(content).hexdigest()
    path = _TEMP_FILES.get(digest)
    if path is None or not os.path.exists(path):
        if not _TEMP_FILES:
            atexit.register(_remove_temp_files)
        fd, path = tempfile.mkstemp(prefix="cloudkit-kube-")  # mkstemp creates it 0600
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        _TEMP_FILES[digest] = path
    return path


def _remove_temp_files():
    for path in _TEMP_FILES.values():
        try:
            os.unlink(path)
        except OSError:
            pass
    _TEMP_FILES.clear()


def _kubernetes_configuration(kubeconfig, context):
    """The kubernetes client loads the kubeconfig: exec plugins and auth providers need its code and token refresh."""
    try:
        import kubernetes.client  # pylint: disable=import-outside-toplevel  # slow: only for these kubeconfigs
        import kubernetes.config  # pylint: disable=import-outside-toplevel
    except ImportError as exc:
        raise KubernetesRequired("this kubeconfig's user (exec or auth-provider) needs the kubernetes Python client: %s" % exc, exc) from exc
    configuration = kubernetes.client.Configuration()
    try:
        if isinstance(kubeconfig, dict):
            kubernetes.config.load_kube_config_from_dict(config_dict=kubeconfig, context=context, client_configuration=configuration)
        else:
            kubernetes.config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
    except kubernetes.config.ConfigException as exc:
        raise ConfigError(str(exc)) from exc
    return configuration


class KubeClient(object):
    """Thin JSON-over-HTTP client on a urllib3 pool.

    `api_client` is an ApiClient of this module or a kubernetes.client.ApiClient
    (the exec/auth-provider fallback): both carry the configuration (TLS,
    proxy, credentials and their refresh hook) and the urllib3 pool the
    requests go through, which lets watches stream.
    """

    def __init__(self, api_client, retry=None, request_timeout=DEFAULT_REQUEST_TIMEOUT, resources=None):
        self.api_client = api_client
        self.configuration = api_client.configuration
        self.retry = retry or Retry()
        self.request_timeout = request_timeout
        self._resources = dict(STATIC_RESOURCES)
        for resource in resources or ():
            self._resources[(resource.api_version, resource.kind)] = resource
        self._discovered = set()
        # Called before every write (create, replace, patch, delete); the lock's fence raises there to stop a job
        # that no longer holds its instance's Lease before the write is sent.
        self.before_write = None

    @classmethod
    def from_options(cls, options=None, retry=None, request_timeout=DEFAULT_REQUEST_TIMEOUT, resources=None):
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
    def host(self):
        return self.configuration.host

    def close(self):
        """Release pooled connections."""
        self.api_client.rest_client.pool_manager.clear()

    # -- resources ---------------------------------------------------------------

    def register(self, resource):
        """Teach the client a kind, so it needs no discovery for it."""
        self._resources[(resource.api_version, resource.kind)] = resource
        return resource

    def resource(self, api_version, kind):
        """The Resource for apiVersion/kind; discovery only for unknown kinds, once per group version."""
        key = (api_version, kind)
        group, sep, version = api_version.rpartition("/")
        if key not in self._resources and sep and version == API_VERSION and kind in (COMPUTE_INSTANCE_KIND, TENANT_KIND):
            # The contract fixes these kinds' plurals in any group (docs/contract.md, Resources): no discovery.
            for resource in contract_resources(Names(group)):
                self.register(resource)
        if key not in self._resources and api_version not in self._discovered:
            self._discover(api_version)
        try:
            return self._resources[key]
        except KeyError:
            raise NotFound("the server has no resource for kind %s in %s" % (kind, api_version), status=404, reason="NotFound")

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
            resource = Resource(api_version, entry["kind"], entry["name"], entry.get("namespaced", True), entry["name"] in subresources)
            self._resources.setdefault((api_version, entry["kind"]), resource)

    # -- transport -----------------------------------------------------------------

    def _headers(self, content_type=None):
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if content_type:
            headers["Content-Type"] = content_type
        # auth_settings() also runs the kubeconfig's token refresh hook.
        for setting in self.configuration.auth_settings().values():
            if setting.get("in") == "header" and setting.get("value"):
                headers[setting["key"]] = setting["value"]
        return headers

    def url(self, path, query=None):
        query = dict((k, v) for k, v in (query or {}).items() if v is not None)
        for key, value in query.items():
            if isinstance(value, bool):
                query[key] = "true" if value else "false"
        return self.configuration.host + path + ("?" + urlencode(query) if query else "")

    def _send(self, method, url, body, headers, timeout, stream):
        pool = self.api_client.rest_client.pool_manager
        try:
            return pool.request(method, url, body=body, headers=headers, timeout=timeout, preload_content=not stream, retries=False)
        except urllib3.exceptions.HTTPError as exc:
            raise TransportError("%s %s: %s" % (method, url.split("?")[0], exc), reason="TransportError")

    def request(self, method, path, query=None, body=None, content_type=None, timeout=None, stream=False):
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
        attempt = 0
        while True:
            attempt += 1
            retry_after = None
            try:
                response = self._send(method, url, payload, self._headers(content_type), timeout, stream)
            except TransportError as exc:
                error = exc
            else:
                if response.status < 400:
                    if stream:
                        return response
                    return json.loads(response.data) if response.data else {}
                data = response.read() if stream else response.data
                if stream:
                    response.release_conn()
                error = error_from_response(response.status, data, response.reason)
                retry_after = _retry_after(response.headers)
            if not isinstance(error, ServerError) or attempt >= self.retry.attempts:
                raise error
            self.retry.sleep(self.retry.delay(attempt, retry_after))

    # -- verbs ---------------------------------------------------------------------

    def _guard(self):
        if self.before_write is not None:
            self.before_write()

    def get(self, resource, name, namespace=None, subresource=None):
        return self.request("GET", resource.path(namespace, name, subresource))

    def get_or_none(self, resource, name, namespace=None):
        try:
            return self.get(resource, name, namespace)
        except NotFound:
            return None

    def list(self, resource, namespace=None, label_selector=None, field_selector=None, limit=None):
        """All items (following `continue`), with the list's resourceVersion."""
        query = {"labelSelector": label_selector, "fieldSelector": field_selector, "limit": limit}
        items = []
        while True:
            page = self.request("GET", resource.path(namespace), query)
            for item in page.get("items") or []:
                item.setdefault("apiVersion", resource.api_version)
                item.setdefault("kind", resource.kind)
                items.append(item)
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return {"items": items, "resource_version": (page.get("metadata") or {}).get("resourceVersion")}
            query["continue"] = token

    def create(self, resource, body, namespace=None, dry_run=False):
        self._guard()
        namespace = namespace or (body.get("metadata") or {}).get("namespace")
        return self.request("POST", resource.path(namespace), {"dryRun": "All" if dry_run else None}, body)

    def replace(self, resource, body, namespace=None, subresource=None):
        self._guard()
        metadata = body.get("metadata") or {}
        namespace = namespace or metadata.get("namespace")
        return self.request("PUT", resource.path(namespace, metadata["name"], subresource), None, body)

    def patch(self, resource, name, patch, namespace=None, patch_type="merge", subresource=None, field_manager=None, force=None):
        self._guard()
        if patch_type not in PATCH_CONTENT_TYPES:
            raise ValueError("patch_type must be one of %s" % ", ".join(sorted(PATCH_CONTENT_TYPES)))
        if patch_type == "apply" and not field_manager:
            raise ValueError("a server-side apply needs a field_manager")
        query = {"fieldManager": field_manager, "force": force}
        return self.request("PATCH", resource.path(namespace, name, subresource), query, patch, PATCH_CONTENT_TYPES[patch_type])

    def delete(self, resource, name, namespace=None, propagation_policy="Background", preconditions=None):
        """DELETE; returns the API's answer (the object while finalizers hold it, else a Status)."""
        self._guard()
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation_policy}
        if preconditions:
            body["preconditions"] = preconditions
        return self.request("DELETE", resource.path(namespace, name), None, body)

    def watch(self, resource, namespace=None, resource_version=None, label_selector=None, field_selector=None,
              timeout_seconds=60, allow_bookmarks=True):
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
            buffer = b""
            for chunk in response.stream(65536, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield _watch_event(json.loads(line))
            if buffer.strip():
                yield _watch_event(json.loads(buffer))
        except (urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError) as exc:
            raise TransportError("watch of %s ended abruptly: %s" % (resource.plural, exc), reason="TransportError")
        finally:
            response.release_conn()


def _watch_event(event):
    if event.get("type") == "ERROR":
        status = event.get("object") or {}
        raise error_from_response(status.get("code") or 500, json.dumps(status).encode("utf-8"), status.get("reason"))
    return event


def _retry_after(headers):
    value = (headers or {}).get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def json_pointer(*tokens):
    """A JSON pointer from raw tokens (RFC 6901 escaping: annotation keys contain '/')."""
    return "".join("/" + str(token).replace("~", "~0").replace("/", "~1") for token in tokens)


def guarded_write(read, write, retry=None, live=None):
    """Read-decide-write until the write lands on the state it was decided from.

    `read()` returns the live object (or None); `write(live)` sends a write
    guarded by that state (a JSON-patch `test` or the resourceVersion) and
    returns its result. A 409 Conflict, or a 422 while the object has moved
    on (the API's answer to a failed `test`), means someone else wrote in
    between: re-read and decide again, a bounded number of times with jitter.
    A 422 on an unchanged object is a real validation error and is raised.
    `live`, when given, is an object this job just got back from a write: the
    first attempt uses it instead of reading again (a stale one costs a 409).
    """
    retry = retry or Retry(attempts=10, base_delay=0.05, max_delay=1.0)
    live = read() if live is None else live
    attempt = 0
    while True:
        attempt += 1
        try:
            return write(live)
        except (Conflict, Invalid) as error:
            if isinstance(error, AlreadyExists) or attempt >= retry.attempts:
                raise
            retry.sleep(retry.delay(attempt))
            fresh = read()
            if isinstance(error, Invalid) and _resource_version(fresh) == _resource_version(live):
                raise
            live = fresh


def _resource_version(obj):
    return ((obj or {}).get("metadata") or {}).get("resourceVersion")


class WaitTimeout(Exception):
    """A wait ran out of time; `last` is the object as last seen (None when absent)."""

    def __init__(self, message, last=None):
        super(WaitTimeout, self).__init__(message)
        self.last = last


def wait_for(client, resource, name, namespace, predicate, timeout, tick=None, tick_interval=5.0, clock=time.monotonic, known=None):
    """Wait until predicate(object or None) is true, driven by a watch of that one object.

    Returns the object (None if the predicate accepted its absence). `tick` is
    called at least every `tick_interval` seconds (the lock's fence); it may raise
    to abort. A broken or expired watch is resumed from a fresh read. `known`
    is the object as this job just wrote or read it: the first watch starts
    from its resourceVersion instead of a read.
    """
    deadline = clock() + timeout
    selector = "metadata.name=%s" % name
    while True:
        current = known if known is not None else client.get_or_none(resource, name, namespace)
        known = None  # a resumed watch starts from a fresh read
        if predicate(current):
            return current
        version = (current or {}).get("metadata", {}).get("resourceVersion")
        if version is None:
            version = client.list(resource, namespace, field_selector=selector, limit=1)["resource_version"]
        while True:
            remaining = deadline - clock()
            if remaining <= 0:
                raise WaitTimeout("timed out after %ds waiting for %s %s/%s" % (timeout, resource.kind, namespace or "", name), current)
            if tick is not None:
                tick()
            window = max(1, int(min(remaining, tick_interval) + 0.999))
            try:
                for event in client.watch(resource, namespace, resource_version=version, field_selector=selector, timeout_seconds=window):
                    obj = event.get("object") or {}
                    version = obj.get("metadata", {}).get("resourceVersion") or version
                    if event["type"] == "BOOKMARK":
                        continue
                    current = None if event["type"] == "DELETED" else obj
                    if predicate(current):
                        return current
            except (Gone, TransportError):
                break  # re-read, then watch again from there
            # A quiet window: ask again, for predicates that also look at other objects (a restarted VM's new VMI).
            if predicate(current):
                return current
