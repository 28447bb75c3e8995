"""Unit tests for plugins/module_utils/kube.py: options, configuration, errors, retries, watch parsing."""

from __future__ import annotations

import json

import pytest
import yaml

from ansible_collections.cloudkit.provisioning.plugins.module_utils import kube
from ansible_collections.cloudkit.provisioning.plugins.module_utils.names import Names

kubernetes = pytest.importorskip("kubernetes")


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
    configuration = kubernetes.client.Configuration()
    configuration.host = "https://api.example.test:6443"
    configuration.api_key = {"authorization": "Bearer s3cret"}
    retry = kube.Retry(attempts=3, base_delay=0.1, max_delay=2.0, sleep=sleeps.append)
    return kube.KubeClient(kubernetes.client.ApiClient(configuration), retry=retry)


def use(client, monkeypatch, *answers):
    recorder = Recorder(*answers)
    monkeypatch.setattr(client, "_send", recorder)
    return recorder


# -- connection options -----------------------------------------------------------


def test_env_fallbacks_apply_and_explicit_values_win():
    environ = {"K8S_AUTH_HOST": "https://env:6443", "K8S_AUTH_API_KEY": "envtoken", "K8S_AUTH_VERIFY_SSL": "no", "K8S_AUTH_CONTEXT": ""}
    resolved = kube.resolve_connection_options({"host": "https://explicit:6443"}, environ=environ)
    assert resolved["host"] == "https://explicit:6443"
    assert resolved["api_key"] == "envtoken"
    assert resolved["validate_certs"] is False
    assert resolved["context"] is None, "an empty variable counts as unset"
    assert set(resolved) == set(kube.AUTH_ARG_SPEC)


def test_unknown_connection_option_is_named():
    with pytest.raises(ValueError, match="tokn"):
        kube.resolve_connection_options({"tokn": "x"}, environ={})


def test_argument_spec_has_every_option_with_its_env_fallback():
    spec = kube.auth_argument_spec()
    assert set(spec) == set(kube.AUTH_ARG_SPEC)
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
    first = kube.build_configuration(kube.resolve_connection_options({"kubeconfig": path}, environ={}))
    assert first.host == "http://127.0.0.1:1"
    assert bearer(first) == "Bearer t1"
    second = kube.build_configuration(kube.resolve_connection_options({"kubeconfig": path, "context": "two"}, environ={}))
    assert second.host == "http://127.0.0.1:2"
    assert bearer(second) == "Bearer t2"


def test_explicit_options_override_the_kubeconfig(tmp_path):
    path = write_kubeconfig(tmp_path / "config", {"one": ("http://127.0.0.1:1", "t1")})
    options = {"kubeconfig": path, "host": "https://other:6443/", "api_key": "override", "validate_certs": False, "ca_cert": "/tmp/ca.crt"}
    configuration = kube.build_configuration(kube.resolve_connection_options(options, environ={}))
    assert configuration.host == "https://other:6443"
    assert bearer(configuration) == "Bearer override"
    assert configuration.verify_ssl is False
    assert configuration.ssl_ca_cert == "/tmp/ca.crt"


def test_host_and_token_need_no_kubeconfig(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    configuration = kube.build_configuration(kube.resolve_connection_options({"host": "https://h:6443", "api_key": "tok"}, environ={}))
    assert configuration.host == "https://h:6443"
    assert bearer(configuration) == "Bearer tok"


def test_without_any_option_falls_back_to_in_cluster_then_home_kubeconfig(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(kubernetes.config.ConfigException):
        kube.build_configuration(kube.resolve_connection_options({}, environ={}))
    (tmp_path / ".kube").mkdir()
    write_kubeconfig(tmp_path / ".kube" / "config", {"home": ("http://127.0.0.1:3", "t3")})
    # the kubernetes client reads the default path when it imports
    monkeypatch.setattr(kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / ".kube" / "config"))
    configuration = kube.build_configuration(kube.resolve_connection_options({}, environ={}))
    assert configuration.host == "http://127.0.0.1:3"


# -- paths and resources ----------------------------------------------------------


def test_resource_paths():
    secret = kube.STATIC_RESOURCES[("v1", "Secret")]
    assert secret.path("ns") == "/api/v1/namespaces/ns/secrets"
    assert secret.path("ns", "a b") == "/api/v1/namespaces/ns/secrets/a%20b"
    vm = kube.STATIC_RESOURCES[("kubevirt.io/v1", "VirtualMachine")]
    assert vm.path("t1", "vm1", "status") == "/apis/kubevirt.io/v1/namespaces/t1/virtualmachines/vm1/status"
    assert vm.path() == "/apis/kubevirt.io/v1/virtualmachines"
    storage_class = kube.STATIC_RESOURCES[("storage.k8s.io/v1", "StorageClass")]
    assert storage_class.path("ignored", "standard") == "/apis/storage.k8s.io/v1/storageclasses/standard"
    with pytest.raises(ValueError, match="namespace is required"):
        secret.path(None, "x")


@pytest.mark.parametrize("group", ["cloudkit.openshift.io", "osac.openshift.io"])
def test_contract_resources_follow_the_group(group):
    instance, tenant = kube.contract_resources(Names(group))
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
    with pytest.raises(kube.NotFound, match="Gizmo"):
        client.resource("example.com/v1", "Gizmo")
    assert len(recorder.calls) == 1
    assert recorder.calls[0]["url"] == "https://api.example.test:6443/apis/example.com/v1"


# -- requests, errors and retries -----------------------------------------------------


def test_requests_carry_the_token_and_json(client, monkeypatch):
    recorder = use(client, monkeypatch, FakeResponse(201, {"metadata": {"name": "x"}}))
    secret = kube.STATIC_RESOURCES[("v1", "Secret")]
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
    client.patch(kube.STATIC_RESOURCES[("v1", "Service")], "svc", [{"op": "test", "path": "/a", "value": 1}], "ns", patch_type=patch_type)
    assert recorder.calls[0]["headers"]["Content-Type"] == content_type


def test_apply_needs_a_field_manager_and_sends_it(client, monkeypatch):
    service = kube.STATIC_RESOURCES[("v1", "Service")]
    with pytest.raises(ValueError, match="field_manager"):
        client.patch(service, "svc", {}, "ns", patch_type="apply")
    recorder = use(client, monkeypatch, FakeResponse(body={}))
    client.patch(service, "svc", {}, "ns", patch_type="apply", field_manager="cloudkit", force=True)
    assert recorder.calls[0]["url"].endswith("/services/svc?fieldManager=cloudkit&force=true")


@pytest.mark.parametrize(
    "code, reason, error_class",
    [
        (401, "Unauthorized", kube.Unauthorized),
        (403, "Forbidden", kube.Forbidden),
        (404, "NotFound", kube.NotFound),
        (409, "Conflict", kube.Conflict),
        (409, "AlreadyExists", kube.AlreadyExists),
        (410, "Expired", kube.Gone),
        (422, "Invalid", kube.Invalid),
        (400, "BadRequest", kube.Invalid),
    ],
)
def test_client_errors_are_typed_and_not_retried(client, monkeypatch, sleeps, code, reason, error_class):
    message = 'secrets "x" says %s' % reason
    recorder = use(client, monkeypatch, FakeResponse(code, status_body(code, reason, message), reason=reason))
    with pytest.raises(error_class) as caught:
        client.get(kube.STATIC_RESOURCES[("v1", "Secret")], "x", "ns")
    assert caught.value.message == message
    assert caught.value.status == code
    assert caught.value.to_dict() == {"status": code, "reason": reason, "message": message}
    assert len(recorder.calls) == 1 and not sleeps


def test_server_errors_are_retried_then_succeed(client, monkeypatch, sleeps):
    recorder = use(
        client,
        monkeypatch,
        FakeResponse(500, status_body(500, "InternalError", "etcd hiccup")),
        kube.TransportError("connection refused"),
        FakeResponse(200, {"kind": "Secret"}),
    )
    assert client.get(kube.STATIC_RESOURCES[("v1", "Secret")], "x", "ns") == {"kind": "Secret"}
    assert len(recorder.calls) == 3
    assert len(sleeps) == 2
    assert all(0 <= s <= 2.0 for s in sleeps)


def test_retries_are_bounded_and_the_last_error_is_raised(client, monkeypatch, sleeps):
    use(client, monkeypatch, *[FakeResponse(503, status_body(503, "ServiceUnavailable", "down %d" % i)) for i in range(3)])
    with pytest.raises(kube.ServerError, match="down 2"):
        client.get(kube.STATIC_RESOURCES[("v1", "Secret")], "x", "ns")
    assert len(sleeps) == 2


def test_retry_after_is_honoured_up_to_the_cap(client, monkeypatch, sleeps):
    throttled = status_body(429, "TooManyRequests", "slow down")
    use(client, monkeypatch, FakeResponse(429, throttled, {"Retry-After": "1"}), FakeResponse(429, throttled, {"Retry-After": "30"}), FakeResponse(200, {}))
    client.get(kube.STATIC_RESOURCES[("v1", "Secret")], "x", "ns")
    assert sleeps[0] >= 1
    assert sleeps[1] == 2.0, "Retry-After is capped at max_delay"


def test_retry_delay_has_jitter_and_grows():
    retry = kube.Retry(attempts=10, base_delay=1.0, max_delay=100.0)
    first = {round(retry.delay(1), 6) for _attempt in range(50)}
    assert len(first) > 1 and max(first) <= 1.0
    assert max(retry.delay(5) for _attempt in range(200)) > 1.0
    with pytest.raises(ValueError):
        kube.Retry(attempts=0)


def test_non_json_error_bodies_keep_their_text():
    error = kube.error_from_response(502, b"<html>bad gateway</html>", "Bad Gateway")
    assert isinstance(error, kube.ServerError)
    assert error.message == "<html>bad gateway</html>"


def test_list_follows_continue_tokens(client, monkeypatch):
    page1 = {"kind": "SecretList", "metadata": {"continue": "abc", "resourceVersion": "10"}, "items": [{"metadata": {"name": "a"}}]}
    page2 = {"kind": "SecretList", "metadata": {"resourceVersion": "10"}, "items": [{"metadata": {"name": "b"}}]}
    recorder = use(client, monkeypatch, FakeResponse(body=page1), FakeResponse(body=page2))
    result = client.list(kube.STATIC_RESOURCES[("v1", "Secret")], "ns", label_selector="a=b", limit=1)
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
    got = list(client.watch(kube.STATIC_RESOURCES[("v1", "Secret")], "ns", resource_version="4", timeout_seconds=5))
    assert got == events
    assert response.released
    url = recorder.calls[0]["url"]
    assert "watch=true" in url and "resourceVersion=4" in url and "allowWatchBookmarks=true" in url and "timeoutSeconds=5" in url
    assert recorder.calls[0]["stream"] is True


def test_watch_error_event_410_raises_gone(client, monkeypatch):
    expired = {"type": "ERROR", "object": status_body(410, "Expired", "too old resource version: 1 (50)")}
    use(client, monkeypatch, FakeResponse(chunks=[json.dumps(expired).encode() + b"\n"]))
    with pytest.raises(kube.Gone, match="too old"):
        list(client.watch(kube.STATIC_RESOURCES[("v1", "Secret")], "ns", resource_version="1"))


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
    found = kube.wait_for(client, kube.STATIC_RESOURCES[("coordination.k8s.io/v1", "Lease")], "vm1", "ns", lambda obj: next(answers), timeout=60,
                          tick_interval=1, clock=lambda: next(ticks))
    assert found["metadata"]["name"] == "vm1"
    assert client.watches == 2
