# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Connection settings: the options, kubeconfig, in-cluster service account, proxy and no_proxy."""

from __future__ import annotations

import atexit
import base64
import hashlib
import ipaddress
import os
import tempfile
import time
from collections.abc import Mapping
from typing import Any, Optional
from urllib.parse import unquote, urlsplit

# The kubernetes package is deliberately not imported here: it costs 0.2 s or more
# in every module run. Kubeconfigs, host/api_key and the in-cluster service account
# are handled below; only exec and auth-provider users import it (_kubernetes_configuration).

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


def auth_argument_spec() -> dict[str, dict[str, Any]]:
    """The connection options with their environment fallbacks, for AnsibleModule."""
    from ansible.module_utils.basic import env_fallback

    spec = {}
    for option, settings in AUTH_ARG_SPEC.items():
        spec[option] = dict(settings, fallback=(env_fallback, [AUTH_ENV[option]]))
    return spec


def resolve_connection_options(options: Optional[Mapping[str, Any]] = None,
                               environ: Optional[Mapping[str, str]] = None) -> dict[str, Any]:
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
        raise ValueError(f"unknown connection option(s): {', '.join(unknown)}")
    return resolved


class ConfigError(Exception):
    """The options, kubeconfig or in-cluster environment do not make a usable configuration."""


class KubernetesRequired(ConfigError):
    """The kubeconfig needs the kubernetes client (exec or auth-provider user) and it is not installed."""

    def __init__(self, message: str, import_error: ImportError):
        super().__init__(message)
        self.import_error = import_error


# Where a pod's service account credentials are mounted (a module attribute so tests can point it elsewhere).
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

# The kubernetes client and client-go re-read a projected service account token this often.
TOKEN_REFRESH_SECONDS = 60.0


class Configuration:
    """Connection settings, with the attribute names and auth_settings() of kubernetes.client.Configuration.

    KubeClient and the event source read only these, so they work the same with
    a configuration the kubernetes client loaded (the exec/auth-provider fallback).
    """

    def __init__(self) -> None:
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

    def auth_settings(self) -> dict[str, dict[str, str]]:
        """The Authorization header setting, in kubernetes.client.Configuration's shape."""
        if self.refresh_api_key_hook is not None:
            self.refresh_api_key_hook(self)
        value = self.api_key.get("authorization")
        if not value:
            return {}
        prefix = self.api_key_prefix.get("authorization")
        if prefix:
            value = f"{prefix} {value}"
        return {"BearerToken": {"type": "api_key", "in": "header", "key": "authorization", "value": value}}


def auth_headers(configuration: Any) -> dict[str, str]:
    """The credential headers of a configuration (ours or kubernetes.client's); runs its token refresh hook."""
    headers = {}
    for setting in configuration.auth_settings().values():
        if setting.get("in") == "header" and setting.get("value"):
            headers[setting["key"]] = setting["value"]
    return headers


def proxy_for(configuration: Any) -> Optional[str]:
    """The proxy URL requests to the configuration's host go through, None when none or no_proxy bypasses it."""
    proxy = configuration.proxy
    if not proxy or bypass_proxy(configuration.host, configuration.no_proxy):
        return None
    return proxy


def proxy_basic_auth(proxy: str) -> Optional[str]:
    """`user:password` from a proxy URL (a kubeconfig proxy-url may carry them), None without a user."""
    parts = urlsplit(proxy)
    if not parts.username:
        return None
    return f"{unquote(parts.username)}:{unquote(parts.password or '')}"


def bypass_proxy(url: str, no_proxy: Optional[str]) -> bool:
    """Whether `url` matches the comma separated no_proxy rules (hosts, domain suffixes, host:port, CIDRs, *)."""
    if not no_proxy:
        return False
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
        if entry in (host, host_and_port) or host.endswith(f".{entry}") or host_and_port.endswith(f".{entry}"):
            return True
    return False


def build_configuration(options: Mapping[str, Any]) -> Any:
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
        configuration.api_key = {"authorization": f"Bearer {options['api_key']}"}
        configuration.api_key_prefix = {}
        # A refresh hook (in-cluster token, exec plugin) would replace the explicit token.
        configuration.refresh_api_key_hook = None
    return configuration


def basic_authorization(credentials: str) -> str:
    """An Authorization header value for `user:password` (latin-1, as urllib3's make_headers encodes it)."""
    return "Basic " + base64.b64encode(credentials.encode("latin-1")).decode("ascii")


def _read_token(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read().strip()


class _TokenFileRefresh:
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
        except OSError:
            return  # keep the token we have; the API answers 401 if it really expired
        if token:
            configuration.api_key = {"authorization": f"Bearer {token}"}


def _load_incluster(configuration, environ=None):
    """Configure the pod's service account; False (nothing changed) outside a cluster, as the kubernetes client
    decides."""
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
        host = f"[{host}]"  # an IPv6 address
    configuration.host = f"https://{host}:{port}"
    configuration.ssl_ca_cert = ca_path
    configuration.api_key = {"authorization": f"Bearer {token}"}
    configuration.refresh_api_key_hook = _TokenFileRefresh(token_path)
    return True


class _NeedsKubernetes(Exception):
    """A kubeconfig this module does not interpret itself (exec or auth-provider user, merged files)."""


def _load_kubeconfig(configuration, kubeconfig, context):
    """Configure from a kubeconfig (a dict, a path, else $KUBECONFIG or ~/.kube/config); may return a kubernetes
    Configuration."""
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
        raise ConfigError(f"Invalid kube-config file. No configuration found at {path}.")
    import yaml  # pylint: disable=import-outside-toplevel  # PyYAML comes with ansible-core; not needed without a kubeconfig

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, "rb") as handle:
        config = yaml.load(handle, Loader=loader)  # nosec: a safe loader
    if not isinstance(config, dict):
        raise ConfigError(f"Invalid kube-config file {path}. No configuration found.")
    return config, os.path.dirname(os.path.abspath(path))


def _named(config, section, name):
    """The entry `name` of a kubeconfig list such as clusters (its inner dict)."""
    key = section[:-1]  # clusters -> cluster
    for entry in config.get(section) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            return entry.get(key) or {}
    raise ConfigError(f"Invalid kube-config file. Expected object with name {name} in {section} list")


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
        configuration.api_key = {"authorization": f"Bearer {token}"}
    elif "exec" in user:
        raise _NeedsKubernetes()
    elif "username" in user and "password" in user:
        configuration.api_key = {"authorization": basic_authorization(f"{user['username']}:{user['password']}")}

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
        raise KubernetesRequired(
            f"this kubeconfig's user (exec or auth-provider) needs the kubernetes Python client: {exc}", exc
        ) from exc
    configuration = kubernetes.client.Configuration()
    try:
        if isinstance(kubeconfig, dict):
            kubernetes.config.load_kube_config_from_dict(
                config_dict=kubeconfig, context=context, client_configuration=configuration
            )
        else:
            kubernetes.config.load_kube_config(
                config_file=kubeconfig, context=context, client_configuration=configuration
            )
    except kubernetes.config.ConfigException as exc:
        raise ConfigError(str(exc)) from exc
    return configuration
