"""Differential tests: plugins/module_utils/kubeconfig.py against the kubernetes client it stands in for.

Every kubeconfig below is loaded twice, by our loader and by kubernetes.config.load_kube_config into a
kubernetes.client.Configuration, and what a request would be sent with is compared: host, TLS settings (certificate
contents, as both write inline data to files of their own), credentials, proxy, TLS server name. The no_proxy rules
are compared with the kubernetes client's own (kubernetes.client.rest.should_bypass_proxies, which its REST client
applies before it picks a proxy; kubernetes.config does not read no_proxy).
"""

from __future__ import annotations

import base64
import json
import os
import stat
import sys

import pytest
import yaml

from ansible_collections.cloudkit.provisioning.plugins.module_utils import kube
from ansible_collections.cloudkit.provisioning.plugins.module_utils import kubeconfig as kube_config

kubernetes = pytest.importorskip("kubernetes")
from kubernetes.client import rest as kubernetes_rest  # noqa: E402  pylint: disable=wrong-import-position

CA = b"-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n"
CERT = b"-----BEGIN CERTIFICATE-----\nCLIENT\n-----END CERTIFICATE-----\n"
KEY = b"-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n"


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def _config(cluster, user, namespace=None, extra_contexts=(), current="main"):
    context = {"cluster": "c", "user": "u"}
    if namespace:
        context["namespace"] = namespace
    contexts = [{"name": "main", "context": context}]
    contexts.extend(extra_contexts)
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}, {"name": "other", "cluster": {"server": "https://other:7443/"}}],
        "users": [{"name": "u", "user": user}, {"name": "other-user", "user": {"token": "other-token"}}],
        "contexts": contexts,
        "current-context": current,
    }


def _exec_user(tmp_path):
    """A user whose exec plugin is a tiny script printing an ExecCredential (runs offline)."""
    script = tmp_path / "credential.py"
    script.write_text("import json\nprint(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1beta1', "
                      "'kind': 'ExecCredential', 'status': {'token': 'from-exec'}}))\n")
    return {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": sys.executable,
                     "args": [str(script)], "interactiveMode": "Never"}}


HTTPS = "https://api.example.com:6443"

# name -> (cluster, user, extras): files named in cluster/user are created in the kubeconfig's directory.
CASES = {
    "bearer token": ({"server": HTTPS, "certificate-authority-data": _b64(CA)}, {"token": "t0k3n"}, {}),
    "token file, relative path": ({"server": HTTPS, "certificate-authority": "ca.crt"}, {"tokenFile": "token"}, {}),
    "token wins over token file": ({"server": HTTPS}, {"token": "inline", "tokenFile": "token"}, {}),
    "client certificate data": (
        {"server": HTTPS, "certificate-authority-data": _b64(CA)},
        {"client-certificate-data": _b64(CERT), "client-key-data": _b64(KEY)}, {}),
    "client certificate files": (
        {"server": HTTPS, "certificate-authority": "ca.crt"},
        {"client-certificate": "client.crt", "client-key": "client.key"}, {}),
    "absolute CA file": ({"server": HTTPS, "certificate-authority": "{dir}/ca.crt"}, {"token": "t"}, {}),
    "insecure-skip-tls-verify": ({"server": HTTPS, "insecure-skip-tls-verify": True}, {"token": "t"}, {}),
    "tls-server-name": ({"server": HTTPS, "certificate-authority-data": _b64(CA), "tls-server-name": "kubernetes"},
                        {"token": "t"}, {}),
    "proxy-url": ({"server": HTTPS, "proxy-url": "http://proxy.example.com:3128"}, {"token": "t"}, {}),
    "proxy-url with credentials": ({"server": HTTPS, "proxy-url": "http://who:pa%40ss@proxy:3128"}, {"token": "t"}, {}),
    "plain http ignores certificates": (
        {"server": "http://127.0.0.1:8080/", "certificate-authority-data": _b64(CA)},
        {"client-certificate-data": _b64(CERT), "client-key-data": _b64(KEY)}, {}),
    "username and password": ({"server": HTTPS}, {"username": "admin", "password": "s3cr\u00e9t"}, {}),
    "no credentials": ({"server": HTTPS}, {}, {}),
    "context namespace": ({"server": HTTPS}, {"token": "t"}, {"namespace": "tenants"}),
    "another context by name": ({"server": HTTPS}, {"token": "t"}, {"context": "second"}),
    "exec plugin": ({"server": HTTPS, "certificate-authority-data": _b64(CA)}, "exec", {}),
}


def _write(tmp_path, name):
    cluster, user, extras = CASES[name]
    (tmp_path / "ca.crt").write_bytes(CA)
    (tmp_path / "client.crt").write_bytes(CERT)
    (tmp_path / "client.key").write_bytes(KEY)
    (tmp_path / "token").write_text("from-file")
    cluster = {k: (v.replace("{dir}", str(tmp_path)) if isinstance(v, str) else v) for k, v in cluster.items()}
    user = _exec_user(tmp_path) if user == "exec" else user
    second = {"name": "second", "context": {"cluster": "other", "user": "other-user", "namespace": "elsewhere"}}
    config = _config(cluster, user, extras.get("namespace"), [second])
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(config))
    return str(path), extras.get("context")


def _ours(path, context, **options):
    options = dict(options, kubeconfig=path, context=context)
    return kube_config.build_configuration(kube_config.resolve_connection_options(options, environ={}))


def _reference(path, context, **options):
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=path, context=context, client_configuration=configuration)
    for option, attribute in (("no_proxy", "no_proxy"), ("proxy", "proxy")):
        if options.get(option) is not None:
            setattr(configuration, attribute, options[option])
    return configuration


def _content(path):
    if path is None:
        return None
    with open(path, "rb") as handle:
        return handle.read()


def _observable(configuration):
    """What a request is sent with: file settings by content, credentials as headers."""
    return {
        "host": configuration.host,
        "verify_ssl": configuration.verify_ssl,
        "ssl_ca_cert": _content(configuration.ssl_ca_cert),
        "cert_file": _content(configuration.cert_file),
        "key_file": _content(configuration.key_file),
        "tls_server_name": configuration.tls_server_name,
        "proxy": configuration.proxy,
        "headers": kube_config.auth_headers(configuration),
    }


@pytest.mark.parametrize("name", sorted(CASES))
def test_loader_matches_kubernetes_config(tmp_path, name):
    path, context = _write(tmp_path, name)
    ours, reference = _ours(path, context), _reference(path, context)
    assert _observable(ours) == _observable(reference)
    for attribute in ("ssl_ca_cert", "cert_file", "key_file"):
        # Paths from files are the files themselves; inline data gets a private file (0600).
        value = getattr(ours, attribute)
        if value and CASES[name][0].get("certificate-authority") and attribute == "ssl_ca_cert":
            assert os.path.samefile(value, getattr(reference, attribute))
        if value and str(tmp_path) not in value:
            assert stat.S_IMODE(os.stat(value).st_mode) == 0o600


def test_exec_plugin_token_reaches_the_request_headers(tmp_path):
    path, context = _write(tmp_path, "exec plugin")
    client = kube.KubeClient.from_options({"kubeconfig": path, "context": context})
    assert kube.request_headers(client.configuration)["authorization"] == "Bearer from-exec"


def test_token_file_whitespace_is_trimmed_as_client_go_does(tmp_path):
    """The one intended difference: kubernetes.config sends a token file's trailing newline in the header."""
    path, context = _write(tmp_path, "token file, relative path")
    (tmp_path / "token").write_text("from-file\n")
    assert kube_config.auth_headers(_ours(path, context)) == {"authorization": "Bearer from-file"}
    assert kube_config.auth_headers(_reference(path, context)) == {"authorization": "Bearer from-file\n"}


def test_unknown_context_is_refused_by_both(tmp_path):
    path, _context = _write(tmp_path, "bearer token")
    with pytest.raises(kube_config.ConfigError, match="missing"):
        _ours(path, "missing")
    with pytest.raises(kubernetes.config.ConfigException, match="missing"):
        _reference(path, "missing")


# (server URL, no_proxy): the kubernetes client's rules are hosts, domain suffixes, host:port, CIDRs and *.
NO_PROXY_CASES = [
    ("https://10.1.2.3:6443", "10.0.0.0/8"),
    ("https://10.1.2.3:6443", "192.168.0.0/16"),
    ("https://10.1.2.3:6443", "10.1.2.3"),
    ("https://[fd00::1]:6443", "fd00::/8"),
    ("https://[fd00::1]:6443", "fe80::/10"),
    ("https://api.example.com:6443", "example.com"),
    ("https://api.example.com:6443", ".example.com"),
    ("https://api.example.com:6443", "api.example.com:6443"),
    ("https://api.example.com:6443", "example.com:6443"),
    ("https://api.example.com:6443", "api.example.com:443"),
    ("https://api.example.com:6443", "notexample.com"),
    ("https://API.Example.com:6443", "api.EXAMPLE.com"),
    ("https://api.example.com:6443", " other.org , example.com "),
    ("https://api.example.com:6443", "*"),
    ("https://api.example.com:6443", ""),
    ("https://api.example.com:6443", "not a cidr/99,,"),
    ("http://localhost:8080", "localhost"),
    ("http://127.0.0.1:8080", "127.0.0.0/8"),
    ("http://127.0.0.1:8080", "127.0.0.1:8080"),
]


@pytest.mark.parametrize("url, no_proxy", NO_PROXY_CASES)
def test_no_proxy_rules_match_the_kubernetes_client(url, no_proxy):
    assert kube_config.bypass_proxy(url, no_proxy) == kubernetes_rest.should_bypass_proxies(url, no_proxy)


@pytest.mark.parametrize("url, no_proxy", NO_PROXY_CASES)
def test_pool_goes_through_the_proxy_exactly_when_the_kubernetes_client_does(tmp_path, url, no_proxy):
    """The whole chain: a kubeconfig with proxy-url plus the no_proxy option, down to the urllib3 pool each builds."""
    config = _config({"server": url, "proxy-url": "http://proxy.example.com:3128"}, {"token": "t"})
    path = tmp_path / "config"
    path.write_text(json.dumps(config))
    ours = _ours(str(path), None, no_proxy=no_proxy)
    reference = _reference(str(path), None, no_proxy=no_proxy)
    ours_proxied = hasattr(kube.pool_manager(ours), "proxy") and kube.pool_manager(ours).proxy is not None
    reference_pool = kubernetes_rest.RESTClientObject(reference).pool_manager
    reference_proxied = getattr(reference_pool, "proxy", None) is not None
    assert ours_proxied == reference_proxied
    assert (kube_config.proxy_for(ours) is not None) == reference_proxied
