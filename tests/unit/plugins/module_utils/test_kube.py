"""Unit tests for plugins/module_utils/kube.py: options, configuration, errors, retries, watch parsing."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys

import pytest
import urllib3
import yaml

from ansible_collections.cloudkit.provisioning.plugins.module_utils import guarded, kube, kube_errors, kube_resources
from ansible_collections.cloudkit.provisioning.plugins.module_utils import kubeconfig as kube_config
from ansible_collections.cloudkit.provisioning.plugins.module_utils import retry as retry_policy
from ansible_collections.cloudkit.provisioning.plugins.module_utils.names import Names


class FakeResponse:
    """Just enough of urllib3's HTTPResponse for KubeClient."""

    def __init__(self, status=200, body=None, headers=None, chunks=None, reason="OK"):
        self.status = status
        self.reason = reason
        self.headers = headers or {}
        self.data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        self.chunks = chunks or []
        self.released = False

    def read(self):
        return self.data

    def stream(self, _amount, decode_content=True):
        assert decode_content
        yield from self.chunks

    def release_conn(self):
        self.released = True


def status_body(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason, "message": message}


class Recorder:
    """Replaces KubeClient._send: answers from a script and records every call."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def __call__(self, method, url, body, headers, timeout, stream):
        self.calls.append({"method": method, "url": url, "body": body, "headers": headers, "timeout": timeout, "stream": stream})
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def client(sleeps):
    configuration = kube_config.Configuration()
    configuration.host = "https://api.example.test:6443"
    configuration.api_key = {"authorization": "Bearer s3cret"}
    retry = retry_policy.Retry(attempts=3, base_delay=0.1, max_delay=2.0, sleep=sleeps.append)
    return kube.KubeClient(kube.ApiClient(configuration), retry=retry)


def use(client, monkeypatch, *answers):
    recorder = Recorder(*answers)
    monkeypatch.setattr(client, "_send", recorder)
    return recorder


# -- connection options -----------------------------------------------------------


def test_env_fallbacks_apply_and_explicit_values_win():
    environ = {"K8S_AUTH_HOST": "https://env:6443", "K8S_AUTH_API_KEY": "envtoken", "K8S_AUTH_VERIFY_SSL": "no", "K8S_AUTH_CONTEXT": ""}
    resolved = kube_config.resolve_connection_options({"host": "https://explicit:6443"}, environ=environ)
    assert resolved["host"] == "https://explicit:6443"
    assert resolved["api_key"] == "envtoken"
    assert resolved["validate_certs"] is False
    assert resolved["context"] is None, "an empty variable counts as unset"
    assert set(resolved) == set(kube_config.AUTH_ARG_SPEC)


def test_unknown_connection_option_is_named():
    with pytest.raises(ValueError, match="tokn"):
        kube_config.resolve_connection_options({"tokn": "x"}, environ={})


def test_argument_spec_has_every_option_with_its_env_fallback():
    spec = kube_config.auth_argument_spec()
    assert set(spec) == set(kube_config.AUTH_ARG_SPEC)
    assert spec["api_key"]["no_log"] is True
    assert spec["validate_certs"]["aliases"] == ["verify_ssl"]
    assert spec["host"]["fallback"][1] == ["K8S_AUTH_HOST"]


def bearer(configuration):
    """The Authorization header a configuration produces (key names vary by client release)."""
    return configuration.auth_settings()["BearerToken"]["value"]


def write_kubeconfig(path, contexts):
    """A kubeconfig with one cluster/user per context name: {context: (server, token)}."""
    config = {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": [], "current-context": next(iter(contexts))}
    for name, (server, token) in contexts.items():
        config["clusters"].append({"name": name, "cluster": {"server": server}})
        config["users"].append({"name": name, "user": {"token": token}})
        config["contexts"].append({"name": name, "context": {"cluster": name, "user": name, "namespace": "default"}})
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_kubeconfig_and_context_are_loaded(tmp_path):
    path = write_kubeconfig(tmp_path / "config", {"one": ("http://127.0.0.1:1", "t1"), "two": ("http://127.0.0.1:2", "t2")})
    first = kube_config.build_configuration(kube_config.resolve_connection_options({"kubeconfig": path}, environ={}))
    assert first.host == "http://127.0.0.1:1"
    assert bearer(first) == "Bearer t1"
    second = kube_config.build_configuration(kube_config.resolve_connection_options({"kubeconfig": path, "context": "two"}, environ={}))
    assert second.host == "http://127.0.0.1:2"
    assert bearer(second) == "Bearer t2"


def test_explicit_options_override_the_kubeconfig(tmp_path):
    path = write_kubeconfig(tmp_path / "config", {"one": ("http://127.0.0.1:1", "t1")})
    options = {"kubeconfig": path, "host": "https://other:6443/", "api_key": "override", "validate_certs": False, "ca_cert": "/tmp/ca.crt"}
    configuration = kube_config.build_configuration(kube_config.resolve_connection_options(options, environ={}))
    assert configuration.host == "https://other:6443"
    assert bearer(configuration) == "Bearer override"
    assert configuration.verify_ssl is False
    assert configuration.ssl_ca_cert == "/tmp/ca.crt"


def test_host_and_token_need_no_kubeconfig(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    configuration = kube_config.build_configuration(kube_config.resolve_connection_options({"host": "https://h:6443", "api_key": "tok"}, environ={}))
    assert configuration.host == "https://h:6443"
    assert bearer(configuration) == "Bearer tok"


def test_without_any_option_falls_back_to_in_cluster_then_home_kubeconfig(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(kube_config.ConfigError, match="No configuration found"):
        kube_config.build_configuration(kube_config.resolve_connection_options({}, environ={}))
    (tmp_path / ".kube").mkdir()
    write_kubeconfig(tmp_path / ".kube" / "config", {"home": ("http://127.0.0.1:3", "t3")})
    configuration = kube_config.build_configuration(kube_config.resolve_connection_options({}, environ={}))
    assert configuration.host == "http://127.0.0.1:3"
    assert bearer(configuration) == "Bearer t3"


def test_kubeconfig_environment_variable_is_the_default_path(tmp_path, monkeypatch):
    path = write_kubeconfig(tmp_path / "elsewhere", {"env": ("http://127.0.0.1:4", "t4")})
    monkeypatch.setenv("KUBECONFIG", path)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    configuration = kube_config.build_configuration(kube_config.resolve_connection_options({}, environ={}))
    assert configuration.host == "http://127.0.0.1:4"


# -- kubeconfig forms, read without the kubernetes client ---------------------------


def b64(data):
    return base64.standard_b64encode(data).decode()


def kubeconfig(cluster, user, context_extra=None, name="c"):
    """A one-context kubeconfig dict."""
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": name,
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": dict({"cluster": name, "user": name}, **(context_extra or {}))}],
    }


def configure(options):
    return kube_config.build_configuration(kube_config.resolve_connection_options(options, environ={}))


def pool_kw(configuration):
    return kube.ApiClient(configuration).rest_client.pool_manager.connection_pool_kw


@pytest.fixture
def no_fallback(monkeypatch):
    """Fails the test if the kubernetes client would be asked to load the kubeconfig."""
    def refuse(kubeconfig, context):
        raise AssertionError("the kubernetes client fallback was used for %r" % (kubeconfig,))
    monkeypatch.setattr(kube_config, "_kubernetes_configuration", refuse)


def test_token_kubeconfig_as_dict(no_fallback):
    configuration = configure({"kubeconfig": kubeconfig({"server": "https://api.test:6443/"}, {"token": "abc"})})
    assert isinstance(configuration, kube_config.Configuration)
    assert configuration.host == "https://api.test:6443"
    assert bearer(configuration) == "Bearer abc"
    assert configuration.verify_ssl is True
    assert configuration.ssl_ca_cert is None and configuration.cert_file is None
    assert pool_kw(configuration)["cert_reqs"] == kube.ssl.CERT_REQUIRED


def test_token_file_and_ca_paths_are_relative_to_the_kubeconfig(tmp_path, monkeypatch, no_fallback):
    directory = tmp_path / "conf"
    directory.mkdir()
    (directory / "token").write_text("from-file\n")
    (directory / "ca.crt").write_text("CA")
    (directory / "config").write_text(yaml.safe_dump(kubeconfig(
        {"server": "https://api.test:6443", "certificate-authority": "ca.crt"},
        {"tokenFile": "token", "client-certificate": "tls.crt", "client-key": "/abs/tls.key"})))
    monkeypatch.chdir(tmp_path)  # not the kubeconfig's directory
    configuration = configure({"kubeconfig": str(directory / "config")})
    assert bearer(configuration) == "Bearer from-file", "read from the file, without its newline"
    assert configuration.ssl_ca_cert == str(directory / "ca.crt")
    assert configuration.cert_file == str(directory / "tls.crt")
    assert configuration.key_file == "/abs/tls.key"
    assert pool_kw(configuration)["ca_certs"] == str(directory / "ca.crt")


def test_inline_token_wins_over_token_file(no_fallback):
    configuration = configure({"kubeconfig": kubeconfig({"server": "http://h:1"}, {"token": "inline", "tokenFile": "/nonexistent"})})
    assert bearer(configuration) == "Bearer inline"


def test_certificate_data_goes_to_private_temporary_files(no_fallback):
    config = kubeconfig(
        {"server": "https://api.test:6443", "certificate-authority-data": b64(b"CA PEM")},
        {"client-certificate-data": b64(b"CERT PEM"), "client-key-data": b64(b"KEY PEM")})
    configuration = configure({"kubeconfig": config})
    paths = {configuration.ssl_ca_cert: b"CA PEM", configuration.cert_file: b"CERT PEM", configuration.key_file: b"KEY PEM"}
    assert len(paths) == 3
    for path, content in paths.items():
        with open(path, "rb") as handle:
            assert handle.read() == content
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert configure({"kubeconfig": config}).key_file == configuration.key_file, "the same data is written once"
    kw = pool_kw(configuration)
    assert (kw["ca_certs"], kw["cert_file"], kw["key_file"]) == (configuration.ssl_ca_cert, configuration.cert_file, configuration.key_file)
    assert bearer_or_none(configuration) is None
    kube_config._remove_temp_files()  # what runs at exit
    assert not any(os.path.exists(path) for path in paths)


def bearer_or_none(configuration):
    return configuration.auth_settings().get("BearerToken", {}).get("value")


def test_certificates_are_ignored_for_plain_http(no_fallback):
    config = kubeconfig({"server": "http://api.test:8080", "certificate-authority": "/ca.crt"}, {"client-certificate": "/c", "client-key": "/k"})
    configuration = configure({"kubeconfig": config})
    assert (configuration.ssl_ca_cert, configuration.cert_file, configuration.key_file) == (None, None, None)


def test_insecure_skip_tls_verify_and_tls_server_name(no_fallback):
    config = kubeconfig({"server": "https://10.0.0.1:6443", "insecure-skip-tls-verify": True, "tls-server-name": "api.internal"}, {"token": "t"})
    configuration = configure({"kubeconfig": config})
    assert configuration.verify_ssl is False
    assert configuration.tls_server_name == "api.internal"
    kw = pool_kw(configuration)
    assert kw["cert_reqs"] == kube.ssl.CERT_NONE
    assert kw["server_hostname"] == "api.internal"
    assert configure({"kubeconfig": config, "validate_certs": True}).verify_ssl is True, "the option overrides the kubeconfig"


def test_basic_auth_user(no_fallback):
    configuration = configure({"kubeconfig": kubeconfig({"server": "http://h:1"}, {"username": "ann", "password": "pw"})})
    assert bearer_or_none(configuration) == "Basic " + b64(b"ann:pw")


def test_context_selection_and_unknown_context(tmp_path, no_fallback):
    path = write_kubeconfig(tmp_path / "config", {"one": ("http://127.0.0.1:1", "t1"), "two": ("http://127.0.0.1:2", "t2")})
    assert configure({"kubeconfig": path, "context": "two"}).host == "http://127.0.0.1:2"
    with pytest.raises(kube_config.ConfigError, match="three"):
        configure({"kubeconfig": path, "context": "three"})
    config = yaml.safe_load(open(path))
    del config["current-context"]
    with pytest.raises(kube_config.ConfigError, match="current-context"):
        configure({"kubeconfig": config})


def test_missing_kubeconfig_file_is_a_config_error(tmp_path, no_fallback):
    with pytest.raises(kube_config.ConfigError, match="No configuration found"):
        configure({"kubeconfig": str(tmp_path / "absent")})


def test_kubeconfig_proxy_url_with_credentials(no_fallback):
    config = kubeconfig({"server": "https://api.test:6443", "proxy-url": "http://u%40x:p@proxy.test:3128"}, {"token": "t"})
    configuration = configure({"kubeconfig": config})
    assert configuration.proxy == "http://u%40x:p@proxy.test:3128"
    manager = kube.ApiClient(configuration).rest_client.pool_manager
    assert isinstance(manager, urllib3.ProxyManager)
    assert manager.proxy.host == "proxy.test" and manager.proxy.port == 3128
    assert manager.proxy_headers["proxy-authorization"] == "Basic " + b64(b"u@x:p")


@pytest.mark.parametrize("no_proxy, bypassed", [
    ("api.test", True), (".test", True), ("api.test:6443", True), ("other.test,*", True), ("10.0.0.0/8", False), ("api.test2", False), (None, False),
])
def test_no_proxy_bypasses_the_proxy(no_proxy, bypassed):
    configuration = configure({"host": "https://api.test:6443", "api_key": "t", "proxy": "http://proxy.test:3128", "no_proxy": no_proxy})
    manager = kube.ApiClient(configuration).rest_client.pool_manager
    assert isinstance(manager, urllib3.ProxyManager) is not bypassed


def test_no_proxy_cidr_matches_an_ip_host():
    assert kube_config.bypass_proxy("https://10.1.2.3:6443", "10.0.0.0/8")
    assert not kube_config.bypass_proxy("https://11.1.2.3:6443", "10.0.0.0/8")


def test_explicit_client_certificate_options_need_no_kubeconfig(tmp_path, monkeypatch, no_fallback):
    monkeypatch.setenv("HOME", str(tmp_path))
    options = {"host": "https://h:6443", "client_cert": "/c.crt", "client_key": "/c.key", "ca_cert": "/ca.crt", "validate_certs": False}
    configuration = configure(options)
    kw = pool_kw(configuration)
    assert (kw["cert_file"], kw["key_file"], kw["ca_certs"], kw["cert_reqs"]) == ("/c.crt", "/c.key", "/ca.crt", kube.ssl.CERT_NONE)
    assert bearer_or_none(configuration) is None


# -- in-cluster service account ------------------------------------------------------


@pytest.fixture
def service_account(tmp_path, monkeypatch):
    directory = tmp_path / "serviceaccount"
    directory.mkdir()
    (directory / "token").write_text("sa-token-1\n")
    (directory / "ca.crt").write_text("CA")
    monkeypatch.setattr(kube_config, "SERVICE_ACCOUNT_DIR", str(directory))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    return directory


def test_in_cluster_service_account(service_account, no_fallback):
    configuration = configure({})
    assert configuration.host == "https://10.96.0.1:443"
    assert configuration.ssl_ca_cert == str(service_account / "ca.crt")
    assert bearer(configuration) == "Bearer sa-token-1"


def test_in_cluster_token_is_reread_after_a_while(service_account, no_fallback):
    configuration = configure({})
    (service_account / "token").write_text("sa-token-2")
    assert bearer(configuration) == "Bearer sa-token-1", "not re-read on every request"
    configuration.refresh_api_key_hook.read_at -= kube_config.TOKEN_REFRESH_SECONDS + 1
    assert bearer(configuration) == "Bearer sa-token-2"
    (service_account / "token").unlink()
    configuration.refresh_api_key_hook.read_at -= kube_config.TOKEN_REFRESH_SECONDS + 1
    assert bearer(configuration) == "Bearer sa-token-2", "a vanished file keeps the last token"


def test_in_cluster_ipv6_host_and_explicit_token_is_not_refreshed_away(service_account, monkeypatch, no_fallback):
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    configuration = configure({"api_key": "explicit"})
    assert configuration.host == "https://[fd00::1]:443"
    assert configuration.refresh_api_key_hook is None
    assert bearer(configuration) == "Bearer explicit"


def test_outside_a_cluster_without_token_file_the_home_kubeconfig_is_used(service_account, tmp_path, no_fallback):
    (service_account / "token").unlink()
    (tmp_path / ".kube").mkdir()
    write_kubeconfig(tmp_path / ".kube" / "config", {"home": ("http://127.0.0.1:3", "t3")})
    assert configure({}).host == "http://127.0.0.1:3"


# -- the kubernetes client, only for exec and auth-provider users --------------------


@pytest.mark.parametrize("user", [
    {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "get-token"}},
    {"auth-provider": {"name": "oidc", "config": {}}, "token": "ignored: auth-provider comes first"},
])
def test_exec_and_auth_provider_users_go_to_the_kubernetes_client(monkeypatch, user):
    calls = []
    sentinel = object()

    def fallback(config, context):
        calls.append((config, context))
        return sentinel

    monkeypatch.setattr(kube_config, "_kubernetes_configuration", fallback)
    config = kubeconfig({"server": "https://api.test:6443"}, user)
    assert kube_config.build_configuration(kube_config.resolve_connection_options({"kubeconfig": config, "context": "c"}, environ={})) is sentinel
    assert calls == [(config, "c")]


def test_merged_kubeconfig_paths_go_to_the_kubernetes_client(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(kube_config, "_kubernetes_configuration", lambda config, context: calls.append((config, context)) or kube_config.Configuration())
    paths = os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")])
    monkeypatch.setenv("KUBECONFIG", paths)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    configure({})
    assert calls == [(paths, None)]


def test_exec_user_is_loaded_by_the_kubernetes_client(tmp_path):
    kubernetes = pytest.importorskip("kubernetes")
    credential = {"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential", "status": {"token": "from-exec"}}
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": sys.executable,
                     "args": ["-c", "print(%r)" % json.dumps(credential)]}}
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(kubeconfig({"server": "http://127.0.0.1:5"}, user)))
    configuration = configure({"kubeconfig": str(path)})
    assert isinstance(configuration, kubernetes.client.Configuration)
    assert configuration.host == "http://127.0.0.1:5"
    assert bearer(configuration) == "Bearer from-exec"
    client = kube.KubeClient.from_options({"kubeconfig": str(path)})
    assert isinstance(client.api_client, kubernetes.client.ApiClient)
    assert kube.request_headers(client.configuration)["authorization"] == "Bearer from-exec"


def test_without_the_kubernetes_client_an_exec_user_raises_kubernetes_required(monkeypatch):
    monkeypatch.setitem(sys.modules, "kubernetes", None)  # import kubernetes now raises ImportError
    config = kubeconfig({"server": "https://api.test:6443"}, {"exec": {"command": "x"}})
    with pytest.raises(kube_config.KubernetesRequired) as caught:
        configure({"kubeconfig": config})
    assert isinstance(caught.value.import_error, ImportError)
    assert isinstance(caught.value, kube_config.ConfigError)


def test_common_configurations_never_import_kubernetes(tmp_path):
    path = write_kubeconfig(tmp_path / "config", {"one": ("http://127.0.0.1:1", "t1")})
    code = "\n".join([
        "import sys",
        "from ansible_collections.cloudkit.provisioning.plugins.module_utils import kube",
        "client = kube.KubeClient.from_options({'kubeconfig': %r})" % path,
        "assert kube.request_headers(client.configuration)['authorization'] == 'Bearer t1'",
        "kube.KubeClient.from_options({'host': 'https://h:6443', 'api_key': 'k'})",
        "loaded = sorted(name for name in sys.modules if name.split('.')[0] == 'kubernetes')",
        "assert not loaded, loaded",
    ])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=str(tmp_path))


def test_kubernetes_configuration_still_works_with_kube_client(monkeypatch):
    kubernetes = pytest.importorskip("kubernetes")
    configuration = kubernetes.client.Configuration()
    configuration.host = "https://api.example.test:6443"
    configuration.api_key = {"authorization": "Bearer k8s"}
    client = kube.KubeClient(kubernetes.client.ApiClient(configuration), retry=retry_policy.NO_RETRY)
    recorder = use(client, monkeypatch, FakeResponse(body={"ok": True}))
    assert client.request("GET", "/version") == {"ok": True}
    assert recorder.calls[0]["headers"]["authorization"] == "Bearer k8s"


# -- paths and resources ----------------------------------------------------------


def test_resource_paths():
    secret = kube_resources.STATIC_RESOURCES[("v1", "Secret")]
    assert secret.path("ns") == "/api/v1/namespaces/ns/secrets"
    assert secret.path("ns", "a b") == "/api/v1/namespaces/ns/secrets/a%20b"
    vm = kube_resources.STATIC_RESOURCES[("kubevirt.io/v1", "VirtualMachine")]
    assert vm.path("t1", "vm1", "status") == "/apis/kubevirt.io/v1/namespaces/t1/virtualmachines/vm1/status"
    assert vm.path() == "/apis/kubevirt.io/v1/virtualmachines"
    storage_class = kube_resources.STATIC_RESOURCES[("storage.k8s.io/v1", "StorageClass")]
    assert storage_class.path("ignored", "standard") == "/apis/storage.k8s.io/v1/storageclasses/standard"
    with pytest.raises(ValueError, match="namespace is required"):
        secret.path(None, "x")


@pytest.mark.parametrize("group", ["cloudkit.openshift.io", "osac.openshift.io"])
def test_contract_resources_follow_the_group(group):
    instance, tenant = kube_resources.contract_resources(Names(group))
    assert instance.path("ns", "ci1") == "/apis/%s/v1alpha1/namespaces/ns/computeinstances/ci1" % group
    assert tenant.kind == "Tenant" and tenant.api_version == group + "/v1alpha1"


def test_known_kinds_need_no_discovery(client, monkeypatch):
    recorder = use(client, monkeypatch)
    assert client.resource("v1", "Secret").plural == "secrets"
    assert client.resource("coordination.k8s.io/v1", "Lease").plural == "leases"
    assert not recorder.calls


def test_unknown_kinds_are_discovered_once_per_group_version(client, monkeypatch):
    listing = {
        "kind": "APIResourceList",
        "groupVersion": "example.com/v1",
        "resources": [
            {"name": "widgets", "kind": "Widget", "namespaced": True},
            {"name": "widgets/status", "kind": "Widget", "namespaced": True},
            {"name": "gadgets", "kind": "Gadget", "namespaced": False},
        ],
    }
    recorder = use(client, monkeypatch, FakeResponse(body=listing))
    widget = client.resource("example.com/v1", "Widget")
    assert (widget.plural, widget.namespaced, widget.has_status) == ("widgets", True, True)
    gadget = client.resource("example.com/v1", "Gadget")
    assert (gadget.namespaced, gadget.has_status) == (False, False)
    with pytest.raises(kube_errors.NotFound, match="Gizmo"):
        client.resource("example.com/v1", "Gizmo")
    assert len(recorder.calls) == 1
    assert recorder.calls[0]["url"] == "https://api.example.test:6443/apis/example.com/v1"


# -- requests, errors and retries -----------------------------------------------------


def test_requests_carry_the_token_and_json(client, monkeypatch):
    recorder = use(client, monkeypatch, FakeResponse(201, {"metadata": {"name": "x"}}))
    secret = kube_resources.STATIC_RESOURCES[("v1", "Secret")]
    created = client.create(secret, {"metadata": {"name": "x", "namespace": "ns"}})
    assert created == {"metadata": {"name": "x"}}
    call = recorder.calls[0]
    assert call["method"] == "POST"
    assert call["url"] == "https://api.example.test:6443/api/v1/namespaces/ns/secrets"
    assert call["headers"]["authorization"] == "Bearer s3cret"
    assert call["headers"]["Content-Type"] == "application/json"
    assert json.loads(call["body"]) == {"metadata": {"name": "x", "namespace": "ns"}}


@pytest.mark.parametrize(
    "patch_type, content_type",
    [("merge", "application/merge-patch+json"), ("json", "application/json-patch+json"), ("strategic", "application/strategic-merge-patch+json")],
)
def test_patch_content_types(client, monkeypatch, patch_type, content_type):
    recorder = use(client, monkeypatch, FakeResponse(body={}))
    client.patch(kube_resources.STATIC_RESOURCES[("v1", "Service")], "svc", [{"op": "test", "path": "/a", "value": 1}], "ns", patch_type=patch_type)
    assert recorder.calls[0]["headers"]["Content-Type"] == content_type


def test_apply_needs_a_field_manager_and_sends_it(client, monkeypatch):
    service = kube_resources.STATIC_RESOURCES[("v1", "Service")]
    with pytest.raises(ValueError, match="field_manager"):
        client.patch(service, "svc", {}, "ns", patch_type="apply")
    recorder = use(client, monkeypatch, FakeResponse(body={}))
    client.patch(service, "svc", {}, "ns", patch_type="apply", field_manager="cloudkit", force=True)
    assert recorder.calls[0]["url"].endswith("/services/svc?fieldManager=cloudkit&force=true")


@pytest.mark.parametrize(
    "code, reason, error_class",
    [
        (401, "Unauthorized", kube_errors.Unauthorized),
        (403, "Forbidden", kube_errors.Forbidden),
        (404, "NotFound", kube_errors.NotFound),
        (409, "Conflict", kube_errors.Conflict),
        (409, "AlreadyExists", kube_errors.AlreadyExists),
        (410, "Expired", kube_errors.Gone),
        (422, "Invalid", kube_errors.Invalid),
        (400, "BadRequest", kube_errors.Invalid),
    ],
)
def test_client_errors_are_typed_and_not_retried(client, monkeypatch, sleeps, code, reason, error_class):
    message = 'secrets "x" says %s' % reason
    recorder = use(client, monkeypatch, FakeResponse(code, status_body(code, reason, message), reason=reason))
    with pytest.raises(error_class) as caught:
        client.get(kube_resources.STATIC_RESOURCES[("v1", "Secret")], "x", "ns")
    assert caught.value.message == message
    assert caught.value.status == code
    assert caught.value.to_dict() == {"status": code, "reason": reason, "message": message}
    assert len(recorder.calls) == 1 and not sleeps


def test_server_errors_are_retried_then_succeed(client, monkeypatch, sleeps):
    recorder = use(
        client,
        monkeypatch,
        FakeResponse(500, status_body(500, "InternalError", "etcd hiccup")),
        kube_errors.TransportError("connection refused"),
        FakeResponse(200, {"kind": "Secret"}),
    )
    assert client.get(kube_resources.STATIC_RESOURCES[("v1", "Secret")], "x", "ns") == {"kind": "Secret"}
    assert len(recorder.calls) == 3
    assert len(sleeps) == 2
    assert all(0 <= s <= 2.0 for s in sleeps)


def test_retries_are_bounded_and_the_last_error_is_raised(client, monkeypatch, sleeps):
    use(client, monkeypatch, *[FakeResponse(503, status_body(503, "ServiceUnavailable", "down %d" % i)) for i in range(3)])
    with pytest.raises(kube_errors.ServerError, match="down 2"):
        client.get(kube_resources.STATIC_RESOURCES[("v1", "Secret")], "x", "ns")
    assert len(sleeps) == 2


def test_retry_after_is_honoured_up_to_the_cap(client, monkeypatch, sleeps):
    throttled = status_body(429, "TooManyRequests", "slow down")
    use(client, monkeypatch, FakeResponse(429, throttled, {"Retry-After": "1"}), FakeResponse(429, throttled, {"Retry-After": "30"}), FakeResponse(200, {}))
    client.get(kube_resources.STATIC_RESOURCES[("v1", "Secret")], "x", "ns")
    assert sleeps[0] >= 1
    assert sleeps[1] == 2.0, "Retry-After is capped at max_delay"


def test_retry_delay_has_jitter_and_grows():
    retry = retry_policy.Retry(attempts=10, base_delay=1.0, max_delay=100.0)
    first = {round(retry.delay(1), 6) for _attempt in range(50)}
    assert len(first) > 1 and max(first) <= 1.0
    assert max(retry.delay(5) for _attempt in range(200)) > 1.0
    with pytest.raises(ValueError):
        retry_policy.Retry(attempts=0)


def test_non_json_error_bodies_keep_their_text():
    error = kube_errors.error_from_response(502, b"<html>bad gateway</html>", "Bad Gateway")
    assert isinstance(error, kube_errors.ServerError)
    assert error.message == "<html>bad gateway</html>"


def test_list_follows_continue_tokens(client, monkeypatch):
    page1 = {"kind": "SecretList", "metadata": {"continue": "abc", "resourceVersion": "10"}, "items": [{"metadata": {"name": "a"}}]}
    page2 = {"kind": "SecretList", "metadata": {"resourceVersion": "10"}, "items": [{"metadata": {"name": "b"}}]}
    recorder = use(client, monkeypatch, FakeResponse(body=page1), FakeResponse(body=page2))
    result = client.list(kube_resources.STATIC_RESOURCES[("v1", "Secret")], "ns", label_selector="a=b", limit=1)
    assert [i["metadata"]["name"] for i in result["items"]] == ["a", "b"]
    assert all(i["kind"] == "Secret" and i["apiVersion"] == "v1" for i in result["items"])
    assert result["resource_version"] == "10"
    assert "continue=abc" in recorder.calls[1]["url"] and "labelSelector=a%3Db" in recorder.calls[1]["url"]


# -- watch --------------------------------------------------------------------------


def test_watch_parses_lines_split_across_chunks(client, monkeypatch):
    events = [{"type": "ADDED", "object": {"metadata": {"name": "a", "resourceVersion": "5"}}},
              {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "6"}}}]
    raw = b"".join(json.dumps(e).encode() + b"\n" for e in events)
    response = FakeResponse(chunks=[raw[:7], raw[7:40], raw[40:]])
    recorder = use(client, monkeypatch, response)
    got = list(client.watch(kube_resources.STATIC_RESOURCES[("v1", "Secret")], "ns", resource_version="4", timeout_seconds=5))
    assert got == events
    assert response.released
    url = recorder.calls[0]["url"]
    assert "watch=true" in url and "resourceVersion=4" in url and "allowWatchBookmarks=true" in url and "timeoutSeconds=5" in url
    assert recorder.calls[0]["stream"] is True


def test_watch_error_event_410_raises_gone(client, monkeypatch):
    expired = {"type": "ERROR", "object": status_body(410, "Expired", "too old resource version: 1 (50)")}
    use(client, monkeypatch, FakeResponse(chunks=[json.dumps(expired).encode() + b"\n"]))
    with pytest.raises(kube_errors.Gone, match="too old"):
        list(client.watch(kube_resources.STATIC_RESOURCES[("v1", "Secret")], "ns", resource_version="1"))


class QuietWatchClient:
    """A client whose object never changes and whose watches end without events (quiet windows)."""

    def __init__(self):
        self.watches = 0

    def get_or_none(self, _resource, name, _namespace):
        return {"metadata": {"name": name, "resourceVersion": "5"}}

    def watch(self, _resource, _namespace, **_kwargs):
        self.watches += 1
        return iter(())


def test_wait_for_asks_again_after_a_quiet_window():
    """A predicate that also reads other objects (a restarted VM's new VMI) is asked again when a watch window ends quietly."""
    client = QuietWatchClient()
    answers = iter([False, False, True])
    ticks = iter(range(100))
    lease = kube_resources.STATIC_RESOURCES[("coordination.k8s.io/v1", "Lease")]
    found = guarded.wait_for(client, lease, "vm1", "ns", lambda obj: next(answers), timeout=60,
                             tick_interval=1, clock=lambda: next(ticks))
    assert found["metadata"]["name"] == "vm1"
    assert client.watches == 2


@pytest.mark.parametrize("user, needs_kubernetes", [({"exec": {"command": "x"}}, True), ({"token": "t"}, False)])
def test_module_asks_for_the_kubernetes_client_only_for_exec_users(monkeypatch, user, needs_kubernetes):
    testing = pytest.importorskip("ansible.module_utils.testing")
    from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_module import KubeModule

    class Failed(Exception):
        pass

    def fail_json(**result):
        raise Failed(result)

    monkeypatch.setitem(sys.modules, "kubernetes", None)  # not installed
    with testing.patch_module_args({"kubeconfig": kubeconfig({"server": "http://127.0.0.1:1"}, user)}):
        module = KubeModule({})
    monkeypatch.setattr(module, "fail_json", fail_json)
    if not needs_kubernetes:
        assert module.client.host == "http://127.0.0.1:1"
        return
    with pytest.raises(Failed) as failed:
        module.client  # noqa: B018  # pylint: disable=pointless-statement
    result = failed.value.args[0]
    assert "kubernetes" in result["msg"] and "exec or auth-provider" in result["msg"]
    assert "cannot configure" not in result["msg"], "reported as a missing library, not a configuration error"


def test_contract_kinds_need_no_discovery():
    """ComputeInstance and Tenant of any group resolve from the contract, without a discovery request."""
    client = kube.KubeClient(kube.ApiClient(kube_config.Configuration()))
    client._discover = None  # a discovery attempt would fail the test: None is not callable
    resource = client.resource("osac.openshift.io/v1alpha1", "ComputeInstance")
    assert (resource.plural, resource.group) == ("computeinstances", "osac.openshift.io")
    assert client.resource("cloudkit.openshift.io/v1alpha1", "Tenant").plural == "tenants"


def test_a_wrong_kubeconfig_path_is_named_and_its_content_stays_masked(tmp_path, monkeypatch, no_fallback):
    """The path is no secret (the failure names it, after fail_json's no_log masking); a kubeconfig given as content
    stays no_log."""
    testing = pytest.importorskip("ansible.module_utils.testing")
    from ansible.module_utils.common.parameters import remove_values
    from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_module import KubeModule

    class Failed(Exception):
        pass

    def fail_json(**result):
        raise Failed(result)

    wrong = str(tmp_path / "no-such-kubeconfig")
    with testing.patch_module_args({"kubeconfig": wrong}):
        module = KubeModule({})
    monkeypatch.setattr(module, "fail_json", fail_json)
    with pytest.raises(Failed) as failed:
        module.client  # noqa: B018  # pylint: disable=pointless-statement
    shown = remove_values(failed.value.args[0], module.no_log_values)  # what fail_json prints
    assert "No configuration found at %s" % wrong in shown["msg"]

    with testing.patch_module_args({"kubeconfig": kubeconfig({"server": "http://127.0.0.1:1"}, {"token": "s3cret-token"})}):
        module = KubeModule({})
    assert remove_values("token s3cret-token", module.no_log_values) == "token ********"
