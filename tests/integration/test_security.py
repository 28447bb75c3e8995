"""Security: who may start a job, what a job may run, what a job may print, and whom a job trusts.

- The webhook rulebook launches nothing for a request without the exact bearer token, on any path
  (create, delete, event stream, legacy), under real ansible-rulebook; with an empty token it never listens.
- A templateID off the allow-list runs nothing: not the role it names, no object, no finalizer; the
  instance shows phase Failed naming spec.templateID.
- Jobs run by the controller stand-in (ansible-runner, as AAP runs them) never write the controller token
  or the Kubernetes bearer token to their output or artifacts, whether they succeed, fail, or call the
  controller; and Jinja in the payload is never rendered.
- TLS: certificates are verified unless validate_certs is false, for the Kubernetes API and the controller.
"""

from __future__ import annotations

import base64
import datetime
import http.server
import json
import os
import ssl
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from kubernetes import client

from ansible_collections.cloudkit.provisioning.plugins.module_utils import aap, kube as kube_utils
from tests.integration.conftest import GROUP, ROOT, refused
from tests.integration.instances import Operator, envelope
from tests.integration.webhooks import TOKEN, free_port, output, post, wait_for
from tests.reliability_report import check

OURS = GROUP + "/computeinstance-aap"
TERMINAL = ("successful", "failed", "error", "canceled")

WEBHOOK = "webhook rejects missing/wrong token"
LAUNCHES_NOTHING = "refused webhook requests launch nothing"
ALLOW_LIST = "off-allow-list templateID runs nothing"
TOKENS = "tokens absent from job output and artifacts"
NO_TEMPLATING = "payload strings never rendered as templates"
TLS = "TLS verified unless validate_certs is false"

CREATE = {"apiVersion": GROUP + "/v1alpha1", "kind": "ComputeInstance",
          "metadata": {"name": "vm1", "namespace": "tenants", "uid": "u-1", "finalizers": [GROUP + "/computeinstance"]},
          "spec": {"templateID": "cloudkit.templates.ocp_virt_vm"}, "status": {"desiredConfigVersion": "abc"}}
DELETE = dict(CREATE, metadata=dict(CREATE["metadata"], deletionTimestamp="2026-02-01T10:00:00Z"))


# -- (a) the webhook ----------------------------------------------------------------------------------------------

# Everything but "Authorization: Bearer <TOKEN>": no header, other schemes, near misses, the token elsewhere.
_token_chars = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~+/=", min_size=1, max_size=12)
wrong_credentials = st.one_of(
    st.just({}),
    st.builds(lambda text: {"Authorization": "Bearer " + text}, _token_chars.filter(lambda text: text != TOKEN)),
    st.builds(lambda text: {"Authorization": "Bearer " + TOKEN + text}, _token_chars),
    st.builds(lambda cut: {"Authorization": "Bearer " + TOKEN[:cut]}, st.integers(0, len(TOKEN) - 1)),
    st.builds(lambda scheme: {"Authorization": scheme + " " + TOKEN}, st.sampled_from(["Basic", "Token", "Bearer:", "Digest", "Bearer Bearer"])),
    st.just({"Authorization": "Basic " + base64.b64encode(("user:" + TOKEN).encode()).decode()}),
    st.just({"Authorization": TOKEN}),
    st.just({"Authorization": "Bearer" + TOKEN}),
    st.just({"Authorization": "Bearer " + TOKEN.upper()}),
    st.builds(lambda name: {name: TOKEN}, st.sampled_from(["X-Auth-Token", "X-Api-Key", "Token", "Cookie"])),
)
PATHS = ("create-compute-instance", "delete-compute-instance", "create-vm", "delete-vm", "stream", "", "create-compute-instance?token=" + TOKEN)


def _listening(process, port):
    return process.poll() is not None or post(port, "create-compute-instance", {}, token=None, secret=None) == 401


def test_webhook_refuses_every_request_without_the_exact_token(rulebook, controller):
    # Token only (no HMAC secret): the token is the one guard, as behind a plain Route.
    port = free_port()
    process = rulebook("compute_instance_webhook.yml", {"webhook_host": "127.0.0.1", "webhook_port": port},
                       env={"webhook_token": TOKEN}, env_vars=("webhook_token",))
    wait_for(lambda: _listening(process, port), "the webhook to listen")
    assert process.poll() is None, output(process)

    @settings(max_examples=80, deadline=None, derandomize=True, database=None)
    @given(path=st.sampled_from(PATHS), body=st.sampled_from([CREATE, DELETE]), headers=wrong_credentials)
    def refused_request(path, body, headers):
        status = post(port, path, body, token=None, secret=None, headers=headers)
        check(WEBHOOK, status in (400, 401, 403), "%s %s answered %s" % (path, headers, status))

    refused_request()
    # A launch happens after the answer: give a wrongly accepted event time to reach the controller.
    assert post(port, "create-compute-instance", dict(CREATE, metadata=dict(CREATE["metadata"], name="vm-allowed")), secret=None) == 200
    wait_for(controller.jobs, "the one authorised job")
    assert controller.wait_idle(60)
    launched = [json.loads(job["extra_vars"])["ansible_eda"]["event"]["payload"]["metadata"]["name"] for job in controller.jobs()]
    check(LAUNCHES_NOTHING, launched == ["vm-allowed"], "jobs launched: %s" % launched)


def test_webhook_with_an_empty_token_never_listens(rulebook, controller):
    port = free_port()
    process = rulebook("compute_instance_webhook.yml", {"webhook_host": "127.0.0.1", "webhook_port": port},
                       env={"webhook_token": ""}, env_vars=("webhook_token",))
    wait_for(lambda: process.poll() is not None or "webhook token is empty" in output(process), "the rulebook to refuse the empty token")
    statuses = [post(port, path, body, token=None, secret=None) for path in ("create-compute-instance", "delete-compute-instance")
                for body in (CREATE, DELETE)]
    check(WEBHOOK, all(status is None for status in statuses), "an open webhook answered %s\n%s" % (statuses, output(process)[-3000:]))
    check(LAUNCHES_NOTHING, not controller.jobs(), str(controller.jobs()))
    assert "webhook token is empty" in output(process), output(process)[-3000:]


# -- (b) the template allow-list ----------------------------------------------------------------------------------

MARKER_ROLE = """---
- name: Leave a mark (this role must never run for a ComputeInstance)
  ansible.builtin.copy:
    content: ran
    dest: "{{ lookup('ansible.builtin.env', 'MARKER_FILE') }}"
    mode: "0600"
"""


@pytest.fixture
def marker_roles(tmp_path):
    """A roles path with a role `cloudkit_marker` that writes MARKER_FILE when run; (environment, marker path)."""
    tasks = tmp_path / "roles" / "cloudkit_marker" / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "main.yml").write_text(MARKER_ROLE)
    marker = tmp_path / "marker"
    return {"ANSIBLE_ROLES_PATH": str(tmp_path / "roles"), "MARKER_FILE": str(marker)}, marker


def test_the_marker_role_runs_when_included(marker_roles, tmp_path):
    """The control: included as upstream included spec.templateID, the role does leave its mark."""
    environment, marker = marker_roles
    playbook = tmp_path / "include.yml"
    playbook.write_text("- hosts: localhost\n  gather_facts: false\n  tasks:\n    - ansible.builtin.include_role:\n        name: cloudkit_marker\n")
    result = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), str(playbook)], env=dict(os.environ, **environment),
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:]
    assert marker.read_text() == "ran"


@pytest.mark.parametrize("template_id", ["cloudkit_marker", "cloudkit.provisioning.eda_config"])
def test_a_template_off_the_allow_list_runs_nothing(template_id, marker_roles, operator, run_job, namespace):
    environment, marker = marker_roles
    created = operator.create(namespace, "vm1", {}, templateID=template_id)
    result = run_job("create_compute_instance.yml", envelope(created), **environment)
    refused(result, "spec.templateID")
    check(ALLOW_LIST, not marker.exists(), "the role named by spec.templateID ran")
    left = operator.leftovers(namespace, operator.vm_namespace)
    check(ALLOW_LIST, not left, "created: %s" % left)
    live = operator.get(namespace, "vm1")
    check(ALLOW_LIST, OURS not in live["metadata"]["finalizers"], str(live["metadata"]["finalizers"]))
    progressing = next((c for c in live["status"].get("conditions") or [] if c["type"] == "Progressing"), {})
    check(ALLOW_LIST, live["status"].get("phase") == "Failed" and "spec.templateID" in progressing.get("message", ""), str(live["status"]))


# -- (c) tokens in job output, and Jinja in payloads --------------------------------------------------------------

LEAK_PLAYBOOK = """---
- name: The control - a job that does print the tokens
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Print them
      ansible.builtin.debug:
        msg:
          - "{{ lookup('ansible.builtin.env', 'CONTROLLER_OAUTH_TOKEN') }}"
          - "{{ lookup('ansible.builtin.file', lookup('ansible.builtin.env', 'K8S_AUTH_KUBECONFIG')) }}"
"""


def _bearer_token(kubeconfig):
    """The bearer token of the kubeconfig's user, None when it authenticates otherwise."""
    with open(kubeconfig, encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    users = config.get("users") or [{}]
    return (users[0].get("user") or {}).get("token")


def _hits(root, secrets):
    """{relative path: [secret names found]} for every file under root holding a secret, raw or base64."""
    found = {}
    for path in sorted(Path(root).rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        names = [name for name, value in secrets.items() if value.encode() in data or base64.b64encode(value.encode()) in data]
        if names:
            found[str(path.relative_to(root))] = names
    return found


@pytest.fixture(scope="module")
def jobs(tmp_path_factory, kube, api_client, kubevirt):
    """Run, through the controller stand-in: a create that succeeds, one that fails, a delete that calls the controller
    with a wrong token and fails, one that calls it and succeeds, and the control job that prints the tokens.
    The payloads carry Jinja. Returns what the tests look at."""
    from tests.stack.controller import ControllerServer

    del kubevirt  # only needed running
    root = tmp_path_factory.mktemp("security-jobs")
    project = root / "project"
    project.mkdir()
    for name in ("create_compute_instance.yml", "delete_compute_instance.yml"):
        (project / name).write_text((ROOT / "playbooks" / name).read_text())
    (project / "leak.yml").write_text(LEAK_PLAYBOOK)
    marker = root / "jinja-ran"
    operator = Operator(api_client, kube.kubeconfig)
    namespace = "sec-" + uuid.uuid4().hex[:8]
    operator.ensure_namespace(namespace)
    operator.tenant(namespace, "acme", namespace + "-vms")
    wrong_token = "wrong-" + uuid.uuid4().hex
    with ControllerServer([], project_dir=str(project), work_dir=str(root / "controller")) as controller:
        environment = {"K8S_AUTH_KUBECONFIG": kube.kubeconfig, "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".build"),
                       "CONTROLLER_HOST": controller.gateway_url, "CONTROLLER_OAUTH_TOKEN": controller.token, "ANSIBLE_VERBOSITY": "3"}
        for name, playbook, env in (("innabox-create-compute-instance", "create_compute_instance.yml", environment),
                                    ("innabox-delete-compute-instance", "delete_compute_instance.yml", environment),
                                    ("wrong-token-delete", "delete_compute_instance.yml", dict(environment, CONTROLLER_OAUTH_TOKEN=wrong_token)),
                                    ("leak", "leak.yml", environment)):
            controller.add_template({"name": name, "organization": "innabox", "playbook": playbook, "allow_simultaneous": True,
                                     "ask_variables_on_launch": True, "environment": env})
        api = aap.ControllerClient(controller.gateway_url, token=controller.token)
        templates = dict((template["name"], template) for template in api.get("job_templates/")["results"])

        def run(template, payload):
            job = api.launch(templates[template], {"ansible_eda": {"event": {"payload": payload}}})["id"]
            controller.wait_status(job, TERMINAL, timeout=300)
            return controller.job(job)

        def with_jinja(obj):
            """The payload as sent, with Jinja where users can write: it must reach the job as text."""
            obj = json.loads(json.dumps(obj))
            obj["metadata"].setdefault("annotations", {})["note"] = "{{ lookup('ansible.builtin.pipe', 'touch %s') }}" % marker
            obj["spec"]["templateParameters"] = json.dumps({"cloud_init": "{{ lookup('ansible.builtin.env', 'CONTROLLER_OAUTH_TOKEN') }}"})
            return obj

        good = operator.create(namespace, "vm-good", {"cloud_init": "#cloud-config\n# {{ lookup('ansible.builtin.env', 'CONTROLLER_OAUTH_TOKEN') }}"})
        bad = operator.create(namespace, "vm-bad", {"cpu_cores": "lots"})
        ran = {"create": run("innabox-create-compute-instance", with_jinja(good)),
               "failing create": run("innabox-create-compute-instance", with_jinja(bad))}
        cloud_init = client.CoreV1Api(api_client).read_namespaced_secret("vm-good-cloud-init", namespace + "-vms")
        operator.delete(namespace, "vm-good")
        deleting = operator.get(namespace, "vm-good")
        ran["delete, wrong controller token"] = run("wrong-token-delete", with_jinja(deleting))
        ran["delete"] = run("innabox-delete-compute-instance", with_jinja(deleting))
        control = run("leak", with_jinja(good))
        yield {"controller": controller, "ran": ran, "control": control, "marker": marker, "cloud_init": cloud_init,
               "secrets": {"controller token": controller.token, "wrong controller token": wrong_token,
                           "kube bearer token": _bearer_token(kube.kubeconfig)}}
    for name in ("vm-good", "vm-bad"):
        if operator.get(namespace, name):
            operator.custom.patch_namespaced_custom_object(GROUP, "v1alpha1", namespace, "computeinstances", name, {"metadata": {"finalizers": []}})
    for name in (namespace, namespace + "-vms"):
        operator.core.delete_namespace(name)


def test_the_jobs_ran_as_intended(jobs):
    statuses = dict((name, job["status"]) for name, job in jobs["ran"].items())
    assert statuses == {"create": "successful", "failing create": "failed", "delete, wrong controller token": "failed", "delete": "successful"}, \
        dict((name, job["stdout"][-3000:]) for name, job in jobs["ran"].items())
    assert "refused the token" in jobs["ran"]["delete, wrong controller token"]["stdout"], "the failing delete called the controller"
    assert "Find this instance's active provision jobs" in jobs["ran"]["delete"]["stdout"], "the delete called the controller"


def test_tokens_never_reach_job_output_or_artifacts(jobs):
    secrets = dict((name, value) for name, value in jobs["secrets"].items() if value)
    controller = jobs["controller"]
    control_dir = "job_%d/" % jobs["control"]["id"]
    hits = _hits(controller.work_dir, secrets)
    # The control proves the search finds what a leaking job writes (its stdout and events).
    assert any(path.startswith(control_dir) for path in hits), "the control job's artifacts hold no token: the search is blind"
    assert set(name for path, names in hits.items() if path.startswith(control_dir) for name in names) >= {"controller token"}
    # ansible-runner's artifacts/<ident>/command records the environment the controller gave the job, credentials
    # included: the launcher's bookkeeping, not job output (AWX redacts it as job_env). It may hold only those.
    launcher = dict((path, names) for path, names in hits.items() if path.endswith("/command") and not path.startswith(control_dir))
    check(TOKENS, all(set(names) <= {"controller token", "wrong controller token"} for names in launcher.values()), str(launcher))
    leaks = dict((path, names) for path, names in hits.items() if not path.startswith(control_dir) and path not in launcher)
    files = sum(1 for path in Path(controller.work_dir).rglob("*") if path.is_file() and not str(path.relative_to(controller.work_dir)).startswith(control_dir))
    check(TOKENS, not leaks, "tokens in %s" % leaks)
    for name, job in jobs["ran"].items():
        text = json.dumps(job)  # stdout, result_traceback, job_explanation, extra_vars, artifacts: all the API shows
        found = [secret for secret, value in secrets.items() if value in text]
        check(TOKENS, not found, "%s job shows %s" % (name, found))
    assert files > 20, "only %d artifact files were searched" % files


def test_payload_strings_are_never_rendered(jobs):
    check(NO_TEMPLATING, not jobs["marker"].exists(), "Jinja from the payload ran on the job host")
    # The live instance's cloud-init went into the VM as written, Jinja and all.
    user_data = base64.b64decode(jobs["cloud_init"].data["userData"]).decode()
    check(NO_TEMPLATING, "# {{ lookup('ansible.builtin.env', 'CONTROLLER_OAUTH_TOKEN') }}" in user_data, user_data)


# -- (d) TLS ------------------------------------------------------------------------------------------------------

def test_clients_verify_certificates_by_default(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://kube.example:6443"}}],
        "users": [{"name": "u", "user": {"token": "t"}}], "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    for options in ({"host": "https://kube.example:6443", "api_key": "t"}, {"kubeconfig": str(kubeconfig)}):
        configuration = kube_utils.build_configuration(kube_utils.resolve_connection_options(options, environ={}))
        check(TLS, configuration.verify_ssl is True, "%s: verify_ssl %r" % (options, configuration.verify_ssl))
    configuration = kube_utils.build_configuration(kube_utils.resolve_connection_options({"kubeconfig": str(kubeconfig), "validate_certs": False}, environ={}))
    assert configuration.verify_ssl is False

    calls = []

    def opener(url, **kwargs):
        calls.append(kwargs)
        raise aap.URLError("not reached")

    for controller in (aap.ControllerClient("https://aap.example", token="t", opener=opener, attempts=1),
                       aap.client_from_params({"controller_host": "aap.example", "controller_oauthtoken": "t"}, opener=opener, attempts=1)):
        check(TLS, controller.validate_certs is True, "validate_certs %r" % controller.validate_certs)
        with pytest.raises(aap.TransportError):
            controller.get("ping/")
    check(TLS, [call["validate_certs"] for call in calls] == [True, True], str(calls))


class _Handler(http.server.BaseHTTPRequestHandler):
    """Answers what the two clients ask: a missing ComputeInstance, and job 1."""

    def do_GET(self):  # noqa: N802  (http.server's name)
        """Record the request; 200 with job 1 for the controller, a 404 Status for anything else."""
        self.server.seen.append(self.path)
        if self.path.rstrip("/").endswith("/jobs/1"):
            status, body = 200, {"id": 1, "type": "job", "name": "t", "status": "successful", "failed": False}
        else:
            status, body = 404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        """Quiet."""


def _self_signed(directory):
    """(certificate, key) files of a self-signed certificate for 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                   .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_file, key_file


@pytest.fixture
def tls_server(tmp_path):
    """An HTTPS server on 127.0.0.1 with a self-signed certificate; (url, certificate file, server)."""
    cert_file, key_file = _self_signed(tmp_path)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.seen = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert_file), str(key_file))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.handle_error = lambda request, address: None  # failed handshakes are the point
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "https://127.0.0.1:%d" % server.server_address[1], cert_file, server
    server.shutdown()
    server.server_close()


TLS_PLAYBOOK = """---
- name: The modules against an HTTPS server with a self-signed certificate
  hosts: localhost
  gather_facts: false
  vars:
    kube: &kube {host: "%(url)s", api_key: not-a-secret, name: vm1, namespace: tenants}
    controller: &controller {job_id: 1, controller_host: "%(url)s", controller_oauthtoken: not-a-secret, request_timeout: 5}
  tasks:
    - {name: kube default, cloudkit.provisioning.computeinstance_info: *kube, register: kube_default, ignore_errors: true}
    - {name: kube with the CA, cloudkit.provisioning.computeinstance_info: {<<: *kube, ca_cert: "%(ca)s"}, register: kube_ca, ignore_errors: true}
    - {name: kube unverified, cloudkit.provisioning.computeinstance_info: {<<: *kube, validate_certs: false}, register: kube_off, ignore_errors: true}
    - {name: aap default, cloudkit.provisioning.aap_job_info: *controller, register: aap_default, ignore_errors: true}
    - {name: aap unverified, cloudkit.provisioning.aap_job_info: {<<: *controller, validate_certs: false}, register: aap_off, ignore_errors: true}
    - name: Keep the results
      ansible.builtin.copy:
        content: "{{ {'kube_default': kube_default, 'kube_ca': kube_ca, 'kube_off': kube_off, 'aap_default': aap_default, 'aap_off': aap_off} | to_json }}"
        dest: "%(out)s"
        mode: "0600"
"""


def _certificate_error(result):
    return "CERTIFICATE_VERIFY_FAILED" in (result.get("msg") or "") or "certificate verify failed" in (result.get("msg") or "")


def test_modules_refuse_an_untrusted_certificate_unless_told_not_to_verify(tls_server, tmp_path):
    url, ca, server = tls_server
    out = tmp_path / "results.json"
    playbook = tmp_path / "tls.yml"
    playbook.write_text(TLS_PLAYBOOK % {"url": url, "ca": ca, "out": out})
    environment = dict((key, value) for key, value in os.environ.items() if not key.startswith(("K8S_AUTH_", "CONTROLLER_", "AAP_", "TOWER_")))
    environment.update(ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".build"), ANSIBLE_NOCOLOR="1")
    result = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), str(playbook)], env=environment,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    results = json.loads(out.read_text())
    for name in ("kube_default", "aap_default"):
        check(TLS, results[name].get("failed") and _certificate_error(results[name]), "%s: %s" % (name, results[name].get("msg")))
    for name in ("kube_ca", "kube_off", "aap_off"):
        check(TLS, not results[name].get("failed"), "%s: %s" % (name, results[name].get("msg")))
    assert results["kube_off"]["exists"] is False and results["kube_ca"]["exists"] is False
    assert results["aap_off"]["job"]["status"] == "successful", results["aap_off"]
    # Only the three accepted connections carried a request (with the credentials) to the server.
    assert len(server.seen) == 3, server.seen
