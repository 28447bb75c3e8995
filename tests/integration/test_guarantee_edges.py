"""The edges of the create and delete jobs' guarantees, through the real playbooks on the local stack.

Each test runs `playbooks/create_compute_instance.yml` and/or `playbooks/delete_compute_instance.yml` as AAP
would (a JOB_ID in the environment, so every API write names its job in the User-Agent), and judges only by
what independent observers saw: direct reads of the API with the kubernetes client (the instance, its
conditions and Events, the Lease, the VM objects), the API stand-in's write log, a watch or a poller the
test runs itself, and the controller stand-in. No code of the collection is called to decide an outcome.

What it proves, one test per edge:

1. a delete job that fails before it holds the lock (controller unreachable, controller answering 500,
   the lock held by a live job past the lock timeout, an invalid lease duration) still signals on the
   instance: a `Deleting` condition `False`/`DeprovisionFailed` naming the cause and a Warning Event,
   then keeps our finalizer (block deletion on failure) or lets the instance go with a
   `DeprovisionIncomplete` Warning;
2. a delete never takes over a Lease renewed by a live holder of another controller, nor one in the old
   holder format, even when its own controller does not know the job id (404); a holder of its own
   controller whose job is unknown there is taken over at once (the control);
3. a lease shorter than 15 s is refused, and the lock is renewed across every module of a job (no lapse
   while a slow module or a VM wait of more than 45 s runs, so a concurrent delete never writes before
   the provision's last write);
4. a create job that waited for the lock of an instance that was deleted and re-created under the same
   name never touches the namesake and leaves no Lease of the old uid;
5. a provision that was stalled (SIGSTOP) past its lease, and lost the lock to a delete meanwhile,
   fails with `lock lost` once resumed and writes nothing more;
6. a create stops when the instance gets a deletionTimestamp during its VM wait (within ~15 s), writes
   neither phase Ready nor the reconciled-config-version annotation on it, releases its Lease and fails;
   the delete then completes;
7. deleting an instance made unmanaged after it was provisioned removes our finalizer, leaves its VM
   objects in place and says so in an Event;
8. a Lease whose time cannot be read (a holder with no renewTime: the APIs refuse one that is not a MicroTime) counts as held.

The API stand-in's fault switch (latency) and tests/stack/kubevirt's ready delays hold jobs at chosen
steps; tests 3, 5 and 6 run on an API and KubeVirt stand-in of their own with slow VMs. The jobs use the
collection in .build (`make sync`); CLOUDKIT_EDGES_COLLECTIONS_PATH points them at another copy (for a
negative control on an older commit: `git archive <commit>` into <dir>/ansible_collections/cloudkit/provisioning,
with the dependency collections of .build beside it).
"""

from __future__ import annotations

import datetime
import http.server
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import kubernetes
import pytest
from kubernetes import client

from tests.integration.instances import Operator, envelope
from tests.stack.kubeapi import DEFAULT_CRD_DIR, KubeAPIServer

ROOT = Path(__file__).resolve().parents[2]
# Where the jobs find the collection: .build (make sync) unless CLOUDKIT_EDGES_COLLECTIONS_PATH points at another copy.
COLLECTIONS = Path(os.environ.get("CLOUDKIT_EDGES_COLLECTIONS_PATH") or ROOT / ".build")
GROUP = "cloudkit.openshift.io"
VERSION = "v1alpha1"
OURS = GROUP + "/computeinstance-aap"
OPERATORS = GROUP + "/computeinstance"
RECONCILED = GROUP + "/reconciled-config-version"
MANAGEMENT = GROUP + "/management-state"
VM_KINDS = ("virtualmachines", "virtualmachineinstances", "datavolumes", "secrets", "services")


# --------------------------------------------------------------------------------------------- verdicts

class Verdict:
    """Collects every broken expectation of a test, so one run shows them all (the negative control's record)."""

    def __init__(self, title):
        self.title = title
        self.problems = []

    def expect(self, condition, message):
        if not condition:
            self.problems.append(message)
        return bool(condition)

    def done(self, *jobs):
        if self.problems:
            context = "".join("\n--- output of %s (rc %s) ---\n%s" % (j.name, j.rc, j.output[-2500:]) for j in jobs if j is not None)
            raise AssertionError("%s:\n- %s%s" % (self.title, "\n- ".join(self.problems), context))


# ------------------------------------------------------------------------------------------------- jobs

def _descendants(pid):
    """Every live descendant of pid (ansible's workers run in sessions of their own, so a process group is not enough)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, encoding="utf-8") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class Job:
    """One ansible-playbook run started by this test (its own session: its pid is its process group id)."""

    def __init__(self, name, process, log_path, job_id):
        self.name = name
        self.process = process
        self.log_path = log_path
        self.job_id = job_id
        self.started = time.monotonic()
        self.ended = None

    @property
    def output(self):
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    @property
    def rc(self):
        return self.process.poll()

    def wait(self, timeout):
        """The return code, or None when still running after timeout seconds."""
        try:
            rc = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        if self.ended is None:
            self.ended = time.monotonic()
        return rc

    def signal_all(self, sig):
        """Send sig to the playbook's process group and to every descendant (twice, for a process forked meanwhile)."""
        for _sweep in range(2):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass
            for pid in _descendants(self.process.pid):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass

    def kill(self):
        if self.process.poll() is None:
            self.signal_all(signal.SIGCONT)
            self.signal_all(signal.SIGKILL)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                pass


@pytest.fixture
def jobs(kube, tmp_path):
    """Start the collection's playbooks as a job template would (extra vars from a file, JOB_ID set); Popen-based."""
    started = []

    def start(playbook, extra_vars, job_id, kubeconfig=None, **env):
        path = tmp_path / ("extra-vars-%s.json" % job_id)
        path.write_text(json.dumps(extra_vars))
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("CONTROLLER_", "TOWER_", "AAP_", "K8S_AUTH_"))}
        environment.update(
            K8S_AUTH_KUBECONFIG=str(kubeconfig or kube.kubeconfig),
            ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
            JOB_ID=str(job_id),
        )
        environment.update(env)
        log_path = tmp_path / ("job-%s.log" % job_id)
        command = [str(Path(sys.executable).with_name("ansible-playbook")), str(ROOT / "playbooks" / playbook), "-e", "@%s" % path]
        with open(log_path, "w", encoding="utf-8") as log:
            process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT,  # pylint: disable=consider-using-with
                                       start_new_session=True, cwd=str(tmp_path))
        job = Job("%s job %s" % (playbook.split("_")[0], job_id), process, log_path, str(job_id))
        started.append(job)
        return job

    def run(playbook, extra_vars, job_id, timeout=240, **kwargs):
        job = start(playbook, extra_vars, job_id, **kwargs)
        if job.wait(timeout) is None:
            job.kill()
            raise AssertionError("%s still running after %ds:\n%s" % (job.name, timeout, job.output[-3000:]))
        return job

    start.run = run
    yield start
    for job in started:
        job.kill()


def new_job_id():
    """A numeric AAP-like job id, unique in this session (also the awx_job_id of the run)."""
    return str(random.randint(10_000_000, 99_999_999))


def job_vars(obj, job_id, **extra):
    """Extra vars as AAP passes them: the EDA envelope plus awx_job_id."""
    return dict(envelope(obj), awx_job_id=int(job_id), **extra)


# --------------------------------------------------------------------------------- write log and reads

def writes_of(server, job_id, since=0):
    """Every write-log entry (any status) whose User-Agent names this JOB_ID."""
    marker = "job/%s" % job_id
    return [w for w in server.write_log(since) if marker in (w.get("user_agent") or "").split()]


def ok_writes(entries):
    return [w for w in entries if w["status"] < 300]


def brief(write):
    return "#%d %s %s %s/%s%s -> %d" % (write["seq"], write["method"], write["kind"], write["namespace"], write["name"],
                                        "/" + write["subresource"] if write.get("subresource") else "", write["status"])


def last_seq(server):
    log = server.write_log()
    return log[-1]["seq"] if log else 0


def wait_until(predicate, timeout, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(interval)


def wait_for_vm_post(server, job, timeout=90):
    """Until the job created its VirtualMachine (it is then in, or about to enter, its VM wait)."""
    def created():
        if job.rc is not None:
            raise AssertionError("%s ended (rc %s) before creating the VM:\n%s" % (job.name, job.rc, job.output[-3000:]))
        return [w for w in ok_writes(writes_of(server, job.job_id)) if w["kind"] == "virtualmachines" and w["method"] == "POST"]
    return wait_until(created, timeout, what="%s to create its VirtualMachine" % job.name)[0]


def custom(api_client):
    return client.CustomObjectsApi(api_client)


def get_instance(api_client, namespace, name):
    try:
        return custom(api_client).get_namespaced_custom_object(GROUP, VERSION, namespace, "computeinstances", name)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def set_finalizers(api_client, namespace, name, finalizers):
    custom(api_client).patch_namespaced_custom_object(GROUP, VERSION, namespace, "computeinstances", name, {"metadata": {"finalizers": finalizers}})


def finalizers_of(obj):
    return list((obj or {}).get("metadata", {}).get("finalizers") or [])


def remove_operators_finalizer(api_client, namespace, name):
    """What the operator does once the Ansible side is done (a plain merge patch, not the collection's code)."""
    live = get_instance(api_client, namespace, name)
    if live is not None:
        set_finalizers(api_client, namespace, name, [f for f in finalizers_of(live) if f != OPERATORS])


def condition(obj, kind):
    for item in ((obj or {}).get("status") or {}).get("conditions") or []:
        if item.get("type") == kind:
            return item
    return None


def events_about(api_client, namespace, name, uid=None):
    """(reason, type, message) of every v1 Event about the instance (by name, and by uid when the Event carries one)."""
    found = []
    for event in client.CoreV1Api(api_client).list_namespaced_event(namespace).items:
        involved = event.involved_object
        if involved is None or involved.name != name:
            continue
        if uid and involved.uid and involved.uid != uid:
            continue
        found.append((event.reason, event.type, event.message or ""))
    return found


def instance_being_deleted(operator, api_client, namespace, name):
    """An instance a provision has owned (our finalizer on it, nothing built yet) that the user then deleted."""
    operator.create(namespace, name, {})
    set_finalizers(api_client, namespace, name, [OPERATORS, OURS])
    operator.delete(namespace, name)
    live = get_instance(api_client, namespace, name)
    assert live["metadata"].get("deletionTimestamp") and OURS in finalizers_of(live)
    return live


# ------------------------------------------------------------------------------------------------ leases

def micro_now(offset=0.0):
    moment = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_micro(value):
    try:
        return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        try:
            return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
        except (TypeError, ValueError):
            return None


def lease_name(uid):
    return "computeinstance-%s" % uid


def read_lease(api_client, namespace, name):
    try:
        return custom(api_client).get_namespaced_custom_object("coordination.k8s.io", "v1", namespace, "leases", name)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def holder_of(lease):
    return ((lease or {}).get("spec") or {}).get("holderIdentity")


class HeldLease:
    """A Lease held by a live job that is not under test: the test creates it and keeps renewing it every 2 s."""

    def __init__(self, api_client, namespace, name, holder, duration=15, renew_time=None, renew=True):
        self.api = custom(api_client)
        self.api_client = api_client
        self.namespace, self.name, self.holder = namespace, name, holder
        self.lost_to = None
        spec = {"holderIdentity": holder, "leaseDurationSeconds": duration, "renewTime": renew_time or micro_now()}
        if renew_time is None:
            spec["acquireTime"] = spec["renewTime"]
        elif renew_time == "absent":  # a holder with no time at all: nothing tells when it lapses
            del spec["renewTime"]
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name, "namespace": namespace}, "spec": spec}
        self.created = self.api.create_namespaced_custom_object("coordination.k8s.io", "v1", namespace, "leases", body)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, daemon=True) if renew else None
        if self._thread:
            self._thread.start()

    def _renew(self):
        while not self._stop.wait(2.0):
            try:
                lease = read_lease(self.api_client, self.namespace, self.name)
                if lease is None or holder_of(lease) != self.holder:
                    self.lost_to = holder_of(lease) if lease else "(deleted)"
                    return
                lease["spec"]["renewTime"] = micro_now()
                self.api.replace_namespaced_custom_object("coordination.k8s.io", "v1", self.namespace, "leases", self.name, lease)
            except client.ApiException:
                continue  # a 409 from a concurrent write: the next round reads again

    def stop(self, release=False):
        self._stop.set()
        if self._thread:
            self._thread.join(10)
        if release:
            try:
                self.api.delete_namespaced_custom_object("coordination.k8s.io", "v1", self.namespace, "leases", self.name)
            except client.ApiException as exc:
                if exc.status != 404:
                    raise


class LeaseObserver:
    """Polls one Lease every 0.2 s and records every moment it was lapsed (now > renewTime + leaseDurationSeconds)."""

    def __init__(self, api_client, namespace, name, tolerance=0.5):
        self.api_client, self.namespace, self.name, self.tolerance = api_client, namespace, name, tolerance
        self.first_holder = None
        self.first_seen = None
        self.lapses = []          # (seconds since first seen, holder, renewTime, duration)
        self.holders = []         # holders in the order seen
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(0.2):
            try:
                lease = read_lease(self.api_client, self.namespace, self.name)
            except Exception:  # pylint: disable=broad-except
                continue
            if lease is None:
                continue
            spec = lease.get("spec") or {}
            holder = spec.get("holderIdentity")
            now = datetime.datetime.now(datetime.timezone.utc)
            if self.first_holder is None:
                self.first_holder, self.first_seen = holder, time.monotonic()
            if not self.holders or self.holders[-1] != holder:
                self.holders.append(holder)
            renewed = parse_micro(spec.get("renewTime"))
            duration = spec.get("leaseDurationSeconds") or 0
            if renewed is None or (now - renewed).total_seconds() > duration + self.tolerance:
                self.lapses.append((round(time.monotonic() - self.first_seen, 1), holder, spec.get("renewTime"), duration))

    def stop(self):
        self._stop.set()
        self._thread.join(10)

    def lapses_of(self, holder):
        return [lapse for lapse in self.lapses if lapse[1] == holder]


# ---------------------------------------------------------------------------------------- own stacks

class Stack:
    """An API stand-in and a KubeVirt stand-in of the test's own, with a Tenant acme in `tenants` (VMs in tenant-acme)."""

    def __init__(self, server, kubeconfig, api_client, operator):
        self.server, self.kubeconfig, self.api_client, self.operator = server, kubeconfig, api_client, operator
        self.namespace, self.vm_namespace = "tenants", "tenant-acme"


@pytest.fixture
def own_stack(kube, tmp_path):
    """Factory: own_stack(ready_delay) starts an API stand-in whose VMs take ready_delay seconds to become Ready."""
    if kube.server is None:
        pytest.skip("needs the stand-ins' write log, fault switch and ready delays")
    from tests.stack.kubevirt import KubeVirtController

    started = []

    def make(ready_delay):
        server = KubeAPIServer(crd_paths=[DEFAULT_CRD_DIR], bookmark_interval=0.5).start()
        kubeconfig = server.write_kubeconfig(tmp_path / ("kubeconfig-%d" % len(started)))
        controller = KubeVirtController(kubeconfig, ready_delay=ready_delay, import_delay=0.2).start()
        api_client = kubernetes.config.new_client_from_config(config_file=kubeconfig)
        started.append((server, controller, api_client))
        operator = Operator(api_client, kubeconfig, GROUP)
        operator.ensure_namespace("tenants")
        operator.tenant("tenants", "acme", "tenant-acme")
        operator.vm_namespace = "tenant-acme"
        return Stack(server, kubeconfig, api_client, operator)

    yield make
    for server, controller, api_client in reversed(started):
        server.faults.clear()
        controller.stop()
        api_client.close()
        server.stop()


class InstanceRecorder:
    """Watches one ComputeInstance from a resourceVersion on and keeps every version of it (an independent observer)."""

    def __init__(self, api_client, namespace, name, resource_version):
        self.api = custom(api_client)
        self.namespace, self.name, self.version = namespace, name, resource_version
        self.seen = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            watcher = kubernetes.watch.Watch()
            try:
                for event in watcher.stream(self.api.list_namespaced_custom_object, GROUP, VERSION, self.namespace, "computeinstances",
                                            field_selector="metadata.name=%s" % self.name, resource_version=self.version,
                                            timeout_seconds=2):
                    obj = event["object"]
                    self.version = obj["metadata"]["resourceVersion"]
                    self.seen.append((event["type"], obj))
                    if self._stop.is_set():
                        break
            except Exception:  # pylint: disable=broad-except
                time.sleep(0.2)
            finally:
                watcher.stop()

    def stop(self):
        self._stop.set()
        self._thread.join(10)


# ------------------------------------------------------------------------------------------ controllers

def closed_port():
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Answer500(http.server.BaseHTTPRequestHandler):
    def _fail(self):
        body = b'{"detail": "injected internal server error"}'
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _fail

    def log_message(self, *args):  # pylint: disable=arguments-differ
        pass


@pytest.fixture
def broken_controller():
    """A controller that answers 500 to everything (the controller stand-in has no fault switch)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer500)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


# ======================================================================================================== 1

@pytest.mark.parametrize("cause, block", [
    pytest.param("closed-port", True, id="closed-port-block"),
    pytest.param("closed-port", False, id="closed-port-let-go"),
    pytest.param("controller-500", True, id="controller-500-block"),
    pytest.param("controller-500", False, id="controller-500-let-go"),
    pytest.param("lock-timeout", True, id="lock-timeout-block"),
    pytest.param("bad-lease-duration", True, id="bad-lease-duration-block"),
])
def test_delete_failing_before_the_lock_signals(operator, jobs, namespace, api_client, broken_controller, cause, block):
    """Defect: a delete job that fails before it holds the lock (controller unreachable or answering 500, lock
    timeout, invalid lease duration) ends with no signal on the instance: no DeprovisionFailed condition, no
    Warning Event, and with block_deletion_on_failure false the finalizer stays."""
    name = "sig-%s" % {"closed-port": "closed", "controller-500": "500", "lock-timeout": "locked", "bad-lease-duration": "lease5"}[cause]
    live = instance_being_deleted(operator, api_client, namespace, name)
    uid = live["metadata"]["uid"]
    job_id = new_job_id()
    extra = {"compute_instance_block_deletion_on_failure": block, "compute_instance_lock_timeout": 5, "compute_instance_lease_duration": 15,
             "compute_instance_controller_host": ""}
    cause_words = []
    holder = None
    if cause == "closed-port":
        port = closed_port()
        extra["compute_instance_controller_host"] = "http://127.0.0.1:%d" % port
        cause_words = [str(port), "refused", "connect", "unreachable"]
    elif cause == "controller-500":
        extra["compute_instance_controller_host"] = broken_controller
        cause_words = ["500", "internal server error", "internal error"]
    elif cause == "lock-timeout":
        holder = HeldLease(api_client, namespace, lease_name(uid), "run-k3y7hand4run@workstation.example")
        cause_words = [lease_name(uid), holder.holder]
    else:
        extra["compute_instance_lease_duration"] = 5
        cause_words = ["lease_duration"]
    try:
        job = jobs.run("delete_compute_instance.yml", job_vars(live, job_id, **extra), job_id, timeout=120, CONTROLLER_OAUTH_TOKEN="t0ken")
    finally:
        if holder is not None:
            holder.stop()

    verdict = Verdict("delete failing before the lock (%s, block_deletion_on_failure=%s)" % (cause, block))
    after = get_instance(api_client, namespace, name)
    verdict.expect(job.rc != 0, "the delete job succeeded (rc 0) although it could not deprovision")
    deleting = condition(after, "Deleting")
    if verdict.expect(deleting is not None and deleting.get("status") == "False" and deleting.get("reason") == "DeprovisionFailed",
                      "no Deleting=False/DeprovisionFailed condition on the instance (Deleting condition: %r)" % (deleting,)):
        message = deleting.get("message") or ""
        verdict.expect(any(word.lower() in message.lower() for word in cause_words),
                       "the DeprovisionFailed message does not name the cause (%s): %r" % (" / ".join(cause_words), message))
        if cause == "bad-lease-duration":
            verdict.expect("15" in message, "the DeprovisionFailed message does not name the minimum 15: %r" % message)
    seen_events = events_about(api_client, namespace, name, uid)
    if block:
        verdict.expect(("DeprovisionFailed", "Warning") in [(r, t) for r, t, _m in seen_events],
                       "no Warning Event DeprovisionFailed on the instance (Events: %r)" % (seen_events,))
        verdict.expect(OURS in finalizers_of(after), "our finalizer was removed although block_deletion_on_failure is true")
        if cause != "lock-timeout":  # no other job holds the lock: the instance shows Failed
            phase = ((after or {}).get("status") or {}).get("phase")
            verdict.expect(phase == "Failed", "phase is %r, not Failed, although no other job holds the lock" % phase)
    else:
        # Letting go, the one Warning Event says both what failed and what may be left behind.
        verdict.expect(OURS not in finalizers_of(after), "our finalizer is still on the instance although block_deletion_on_failure is false")
        verdict.expect(("DeprovisionIncomplete", "Warning") in [(r, t) for r, t, _m in seen_events],
                       "no Warning Event DeprovisionIncomplete on the instance (Events: %r)" % (seen_events,))
    if cause == "lock-timeout":
        verdict.expect(holder.lost_to is None and holder_of(read_lease(api_client, namespace, lease_name(uid))) == holder.holder,
                       "the live holder's Lease was taken over (now %r)" % holder_of(read_lease(api_client, namespace, lease_name(uid))))
    if cause == "bad-lease-duration":
        verdict.expect("lease_duration" in job.output and "15" in job.output, "the job output does not name lease_duration and 15")
    verdict.done(job)


# ======================================================================================================== 2

@pytest.mark.parametrize("holder_kind", ["other-controller", "old-format", "control-same-controller-job-unknown"])
def test_delete_never_takes_over_a_live_holder_of_another_controller(operator, controller, jobs, namespace, api_client, instrumented_api, holder_kind):
    """Defect: the delete takes over a live Lease on the word of the wrong controller: a holder `job-<id>` (old
    format) is taken over because the delete's own controller answers 404 for that id, though the job may run on
    another controller; and `job-<id>@<other controller>` is never recognised at all. The control case (a
    holder of the delete's own controller whose job that controller does not know) must be taken over at once."""
    name = {"other-controller": "live-other", "old-format": "live-old", "control-same-controller-job-unknown": "live-control"}[holder_kind]
    live = instance_being_deleted(operator, api_client, namespace, name)
    uid = live["metadata"]["uid"]
    netloc = urlsplit(controller.url).netloc
    holder_identity = {"other-controller": "job-999@other-controller.example:443", "old-format": "job-999",
                       "control-same-controller-job-unknown": "job-999@%s" % netloc}[holder_kind]
    # The precondition, read independently: the delete's controller does not know job 999.
    request = urllib.request.Request(controller.url + "/api/v2/jobs/999/", headers={"Authorization": "Bearer %s" % controller.token})
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=10)  # pylint: disable=consider-using-with
    assert answer.value.code == 404

    held = HeldLease(api_client, namespace, lease_name(uid), holder_identity)
    job_id = new_job_id()
    extra = {"compute_instance_controller_host": controller.url, "compute_instance_lock_timeout": 5, "compute_instance_lease_duration": 15}
    try:
        job = jobs.run("delete_compute_instance.yml", job_vars(live, job_id, **extra), job_id, timeout=120,
                       CONTROLLER_OAUTH_TOKEN=controller.token, CONTROLLER_HOST=controller.url)
    finally:
        held.stop()
    after = get_instance(api_client, namespace, name)
    lease = read_lease(api_client, namespace, lease_name(uid))
    lease_takeovers = [brief(w) for w in ok_writes(writes_of(instrumented_api, job_id)) if w["kind"] == "leases" and w["method"] in ("PUT", "PATCH", "POST")]

    if holder_kind.startswith("control"):
        verdict = Verdict("delete vs a holder of its own controller whose job that controller does not know (control)")
        verdict.expect(job.rc == 0, "the delete failed instead of taking over the Lease of a job its own controller does not know")
        verdict.expect(OURS not in finalizers_of(after), "our finalizer is still on the instance")
        verdict.expect(held.lost_to is not None and lease_takeovers, "the live Lease of %s was not taken over" % holder_identity)
        verdict.done(job)
        return

    verdict = Verdict("delete vs a live Lease held by %s" % holder_identity)
    verdict.expect(held.lost_to is None and holder_of(lease) == holder_identity,
                   "the delete took over the live Lease of %s (holder now %r; lease writes by the delete: %s)"
                   % (holder_identity, holder_of(lease), lease_takeovers))
    verdict.expect(not lease_takeovers, "the delete wrote the Lease: %s" % lease_takeovers)
    verdict.expect(job.rc != 0, "the delete job succeeded (rc 0) while a live job held the lock")
    deleting = condition(after, "Deleting")
    verdict.expect(deleting is not None and deleting.get("status") == "False" and deleting.get("reason") == "DeprovisionFailed",
                   "no Deleting=False/DeprovisionFailed condition after the lock timeout (Deleting condition: %r)" % (deleting,))
    seen_events = events_about(api_client, namespace, name, uid)
    verdict.expect(("DeprovisionFailed", "Warning") in [(r, t) for r, t, _m in seen_events],
                   "no Warning Event DeprovisionFailed on the instance (Events: %r)" % (seen_events,))
    verdict.expect(OURS in finalizers_of(after), "our finalizer was removed while a live job held the lock")
    verdict.done(job)


# ======================================================================================================== 3

def test_short_lease_is_refused_and_renewal_spans_tasks(own_stack, jobs):
    """Defect: a 5 s lease is accepted (and provisions), and the Lease is renewed only inside waits, so it lapses
    while a module without a wait runs long (here the status writes of one module take 12 s) and another job
    could take it mid-provision.

    B: a create with a 15 s lease holds it through that 12 s module and a VM wait of more than 45 s, then the
    instance is deleted and a delete job started: an observer polling the Lease every 0.2 s must never see it
    lapsed while the create holds it, and the delete must write nothing before the create's last write.
    A (run during B's VM wait, on an instance of its own): compute_instance_lease_duration 5 is refused, naming
    lease_duration and 15, and nothing is written to the instance."""
    stack = own_stack(ready_delay=120)  # the VM never gets Ready during the test
    server, api_client, operator = stack.server, stack.api_client, stack.operator
    verdict = Verdict("short lease refused, renewal across tasks")

    instance = operator.create(stack.namespace, "long", {})
    uid = instance["metadata"]["uid"]
    observer = LeaseObserver(api_client, stack.namespace, lease_name(uid))
    create_id, delete_id, short_id = new_job_id(), new_job_id(), new_job_id()
    create = jobs("create_compute_instance.yml", job_vars(instance, create_id, compute_instance_lease_duration=15, compute_instance_lock_timeout=60,
                                                          compute_instance_wait_timeout=65), create_id, kubeconfig=stack.kubeconfig)
    delete = refused = None
    try:
        wait_until(lambda: observer.first_holder or create.rc is not None, 60, what="the create to take the Lease")
        # From now on every write to the instance takes 6 s: the module that owns the instance and reports
        # Progressing (two writes) runs ~12 s without a wait of its own, so only renewal during it keeps the Lease.
        server.faults.set(latency=6.0, methods=("POST", "PUT", "PATCH"), path_regex=r"/computeinstances/")
        wait_for_vm_post(server, create, timeout=90)
        server.faults.clear()
        vm_posted = time.monotonic()

        # A, meanwhile: a lease below 15 s is refused before anything is written to the instance.
        short = operator.create(stack.namespace, "short", {})
        refused = jobs.run("create_compute_instance.yml", job_vars(short, short_id, compute_instance_lease_duration=5, compute_instance_wait_timeout=10),
                           short_id, timeout=120, kubeconfig=stack.kubeconfig)

        # B: more than 45 s of VM wait (three lease durations), then the user deletes the instance.
        while time.monotonic() - vm_posted < 46 and create.rc is None:
            time.sleep(0.5)
        verdict.expect(create.rc is None, "the create ended (rc %s) %.0f s into its VM wait, before the delete" % (create.rc, time.monotonic() - vm_posted))
        operator.delete(stack.namespace, "long")
        delete = jobs("delete_compute_instance.yml", job_vars(operator.get(stack.namespace, "long"), delete_id, compute_instance_lease_duration=15,
                                                              compute_instance_lock_timeout=90), delete_id, kubeconfig=stack.kubeconfig)
        create.wait(90)
        delete.wait(120)
    finally:
        server.faults.clear()
        observer.stop()

    # B.
    verdict.expect(observer.first_holder is not None, "the create never held a Lease")
    held_until = (create.ended or time.monotonic()) - observer.first_seen if observer.first_seen else 0
    lapses = [lapse for lapse in observer.lapses_of(observer.first_holder) if lapse[0] < held_until]
    verdict.expect(not lapses, "the create's Lease (holder %s) lapsed while the create ran; (s after acquisition, holder, renewTime, "
                               "leaseDurationSeconds): %s" % (observer.first_holder, lapses[:4] + (["..."] + lapses[-1:] if len(lapses) > 4 else [])))
    create_writes, delete_writes = ok_writes(writes_of(server, create_id)), ok_writes(writes_of(server, delete_id))
    if create_writes and delete_writes:
        create_last = max(w["seq"] for w in create_writes)
        early = [brief(w) for w in delete_writes if w["seq"] < create_last]
        verdict.expect(not early, "the delete wrote before the provision's last write (%s): %s"
                       % (brief(max(create_writes, key=lambda w: w["seq"])), early[:8]))
    verdict.expect(delete.rc == 0, "the delete job did not succeed (rc %s)" % delete.rc)
    verdict.expect(create.ended is not None and create.ended - vm_posted > 45, "the VM wait did not last more than 45 s (scenario not reached)")

    # A.
    text = refused.output
    verdict.expect(refused.rc != 0, "a create with compute_instance_lease_duration 5 succeeded")
    verdict.expect("lease_duration" in text and "15" in text, "the refusal of a 5 s lease does not name lease_duration and the minimum 15")
    touched = [brief(w) for w in writes_of(server, short_id) if w["kind"] == "computeinstances"]
    verdict.expect(not touched, "the create with a 5 s lease wrote to the instance: %s" % touched[:6])
    verdict.expect(operator.get(stack.namespace, "short")["metadata"]["resourceVersion"] == short["metadata"]["resourceVersion"],
                   "the instance changed under the create with a 5 s lease")
    verdict.done(create, delete, refused)


# ======================================================================================================== 4

def test_create_never_touches_a_recreated_namesake(operator, jobs, namespace, api_client, instrumented_api):
    """Defect: the create job identifies the instance by name after it waited for the lock: when the instance was
    deleted and re-created under the same name meanwhile, it provisions the namesake (new uid) under the old
    uid's lock, and its release then looks for the namesake's Lease, leaving the old uid's Lease behind."""
    first = operator.create(namespace, "twin", {})
    old_uid = first["metadata"]["uid"]
    held = HeldLease(api_client, namespace, lease_name(old_uid), "run-earlier0job@workstation.example")
    job_id = new_job_id()
    create = jobs("create_compute_instance.yml", job_vars(first, job_id, compute_instance_lock_timeout=60), job_id)
    try:
        # Until the create waits for the lock: its first Lease write (a refused create) or, at the latest, 12 s.
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline and create.rc is None and not [w for w in writes_of(instrumented_api, job_id) if w["kind"] == "leases"]:
            time.sleep(0.1)
        assert create.rc is None, "the create ended before the namesake appeared:\n" + create.output[-3000:]
        operator.delete(namespace, "twin")
        set_finalizers(api_client, namespace, "twin", [])
        wait_until(lambda: get_instance(api_client, namespace, "twin") is None, 10, what="the first instance to go")
        mark = last_seq(instrumented_api)
        second = operator.create(namespace, "twin", {})
        new_uid = second["metadata"]["uid"]
        assert new_uid != old_uid
    finally:
        held.stop(release=True)  # the earlier job ends and lets go of the old uid's lock
    create.wait(120)

    verdict = Verdict("create launched for the first 'twin' after it was re-created under the same name")
    namesake = get_instance(api_client, namespace, "twin")
    touched = [brief(w) for w in writes_of(instrumented_api, job_id, since=mark) if w["kind"] in ("computeinstances",) + VM_KINDS]
    verdict.expect(not touched, "the create job wrote to the namesake or its VM objects: %s" % touched[:10])
    verdict.expect(OURS not in finalizers_of(namesake), "our finalizer was added to the namesake (finalizers %s)" % finalizers_of(namesake))
    verdict.expect(operator.objects(operator.vm_namespace, new_uid) == [], "VM objects were made for the namesake: %s"
                   % operator.objects(operator.vm_namespace, new_uid))
    # No other job runs here: any Event naming the namesake's uid comes from this create job.
    about_namesake = [(e.reason, e.message) for e in client.CoreV1Api(api_client).list_namespaced_event(namespace).items
                      if e.involved_object is not None and e.involved_object.uid == new_uid]
    verdict.expect(not about_namesake, "Events about the namesake (uid %s): %s" % (new_uid, about_namesake))
    verdict.expect(read_lease(api_client, namespace, lease_name(old_uid)) is None,
                   "the Lease of the old uid is left behind (holder %r)" % holder_of(read_lease(api_client, namespace, lease_name(old_uid))))
    new_lease = read_lease(api_client, namespace, lease_name(new_uid))
    verdict.expect(new_lease is None, "a Lease of the namesake's uid is left (holder %r)" % holder_of(new_lease))
    verdict.done(create)


# ======================================================================================================== 5

def test_stalled_provision_that_lost_its_lease_fails_and_writes_nothing(own_stack, jobs):
    """Defect: the lock is no fence. A provision stalled (SIGSTOP) in its VM wait for longer than its lease loses
    the Lease to a delete that deprovisions meanwhile; once resumed it keeps writing (its failure status, the
    Lease) and does not report `lock lost`."""
    stack = own_stack(ready_delay=120)
    server, operator = stack.server, stack.operator
    instance = operator.create(stack.namespace, "stalled", {})
    uid = instance["metadata"]["uid"]
    create_id, delete_id = new_job_id(), new_job_id()
    create = jobs("create_compute_instance.yml", job_vars(instance, create_id, compute_instance_lease_duration=15, compute_instance_wait_timeout=300),
                  create_id, kubeconfig=stack.kubeconfig)
    wait_for_vm_post(server, create)
    time.sleep(3)  # in its VM wait
    create.signal_all(signal.SIGSTOP)
    stopped = time.monotonic()
    operator.delete(stack.namespace, "stalled")
    delete = jobs.run("delete_compute_instance.yml", job_vars(operator.get(stack.namespace, "stalled"), delete_id, compute_instance_lease_duration=15,
                                                              compute_instance_lock_timeout=60), delete_id, timeout=120, kubeconfig=stack.kubeconfig)
    time.sleep(max(0.0, 25 - (time.monotonic() - stopped)))
    mark = last_seq(server)
    create.signal_all(signal.SIGCONT)
    resumed = time.monotonic()
    rc = create.wait(90)

    verdict = Verdict("provision stalled %.0f s with a 15 s lease while a delete took the Lease" % (resumed - stopped))
    verdict.expect(delete.rc == 0, "the delete did not take the lapsed Lease and deprovision (rc %s)" % delete.rc)
    verdict.expect(operator.objects(stack.vm_namespace, uid) == [], "the delete left VM objects: %s" % operator.objects(stack.vm_namespace, uid))
    late = [brief(w) for w in writes_of(server, create_id, since=mark)]
    verdict.expect(not late, "the resumed provision wrote after it lost the lock: %s" % late[:10])
    verdict.expect(rc is not None and rc != 0, "the resumed provision did not fail (rc %s)" % rc)
    verdict.expect("lock lost" in create.output, "the resumed provision's output does not say 'lock lost'")
    verdict.done(create, delete)


# ======================================================================================================== 6

def test_create_stops_when_the_instance_is_being_deleted(own_stack, jobs):
    """Defect: a create that is waiting for its VM does not notice the instance's deletionTimestamp; it keeps
    the lock until the VM is Ready and then writes phase Ready and the reconciled-config-version annotation on an
    instance being deleted (and holds the delete back meanwhile)."""
    stack = own_stack(ready_delay=30)
    server, api_client, operator = stack.server, stack.api_client, stack.operator
    instance = operator.create(stack.namespace, "doomed", {})
    uid = instance["metadata"]["uid"]
    create_id, delete_id = new_job_id(), new_job_id()
    create = jobs("create_compute_instance.yml", job_vars(instance, create_id, compute_instance_wait_timeout=90), create_id, kubeconfig=stack.kubeconfig)
    wait_for_vm_post(server, create)
    time.sleep(3)  # in its VM wait
    recorder = InstanceRecorder(api_client, stack.namespace, "doomed", operator.get(stack.namespace, "doomed")["metadata"]["resourceVersion"])
    operator.delete(stack.namespace, "doomed")
    deleted = time.monotonic()
    delete = jobs("delete_compute_instance.yml", job_vars(operator.get(stack.namespace, "doomed"), delete_id, compute_instance_lock_timeout=120),
                  delete_id, kubeconfig=stack.kubeconfig)
    in_time = create.wait(20) is not None
    create.wait(90)
    stopped_after = time.monotonic() - deleted if in_time else None
    delete.wait(150)
    recorder.stop()

    verdict = Verdict("create whose instance is deleted during its VM wait")
    verdict.expect(in_time, "the create was still running 20 s after the deletionTimestamp (ended %.0f s after it)"
                   % ((create.ended or time.monotonic()) - deleted))
    verdict.expect(create.rc not in (None, 0), "the create did not fail (rc %s)" % create.rc)
    deleting_versions = [obj for _type, obj in recorder.seen if obj["metadata"].get("deletionTimestamp")]
    ready = [obj["metadata"]["resourceVersion"] for obj in deleting_versions if (obj.get("status") or {}).get("phase") == "Ready"]
    verdict.expect(not ready, "phase Ready was written on the instance being deleted (resourceVersions %s)" % ready)
    reconciled = [obj["metadata"]["resourceVersion"] for obj in deleting_versions if RECONCILED in (obj["metadata"].get("annotations") or {})]
    verdict.expect(not reconciled, "the reconciled-config-version annotation was written on the instance being deleted (resourceVersions %s)"
                   % reconciled)
    released = [w for w in ok_writes(writes_of(server, create_id)) if w["kind"] == "leases" and w["method"] == "DELETE"]
    verdict.expect(released, "the create did not release its Lease (no DELETE of %s by it)" % lease_name(uid))
    verdict.expect(delete.rc == 0, "the delete did not succeed (rc %s)" % delete.rc)
    remove_operators_finalizer(api_client, stack.namespace, "doomed")
    verdict.expect(get_instance(api_client, stack.namespace, "doomed") is None, "the instance is not gone")
    verdict.expect(operator.objects(stack.vm_namespace, uid) == [], "VM objects left: %s" % operator.objects(stack.vm_namespace, uid))
    if stopped_after is not None:
        print("create stopped %.1f s after the deletionTimestamp" % stopped_after)  # noqa: T201
    verdict.done(create, delete)


# ======================================================================================================== 7

def test_unmanaged_instance_delete_releases_our_finalizer(operator, jobs, namespace, api_client, instrumented_api):
    """Defect: once an instance is made unmanaged, the delete job does nothing at all, so our finalizer (added
    while it was managed) is never removed and the instance can never go."""
    operator.create(namespace, "hands-off", {})
    create_id = new_job_id()
    provisioned = jobs.run("create_compute_instance.yml", job_vars(operator.get(namespace, "hands-off"), create_id), create_id)
    assert provisioned.rc == 0, provisioned.output[-4000:]
    live = operator.get(namespace, "hands-off")
    uid = live["metadata"]["uid"]
    assert OURS in finalizers_of(live) and live["status"]["phase"] == "Ready"
    objects = operator.objects(operator.vm_namespace, uid)
    assert objects, "the provision made no VM objects"
    custom(api_client).patch_namespaced_custom_object(GROUP, VERSION, namespace, "computeinstances", "hands-off",
                                                      {"metadata": {"annotations": {MANAGEMENT: "unmanaged"}}})
    operator.delete(namespace, "hands-off")
    delete_id = new_job_id()
    delete = jobs.run("delete_compute_instance.yml", job_vars(operator.get(namespace, "hands-off"), delete_id), delete_id)

    verdict = Verdict("delete of an instance made unmanaged after it was provisioned")
    after = operator.get(namespace, "hands-off")
    verdict.expect(delete.rc == 0, "the delete job failed (rc %s)" % delete.rc)
    verdict.expect(after is None or OURS not in finalizers_of(after), "our finalizer is still on the unmanaged instance: it can never go")
    verdict.expect(operator.objects(operator.vm_namespace, uid) == objects, "the VM objects were not left in place: %s -> %s"
                   % (objects, operator.objects(operator.vm_namespace, uid)))
    seen = events_about(api_client, namespace, "hands-off", uid)
    said = [m for _r, _t, m in seen if "left in place" in m.lower() or ("left" in m.lower() and "unmanaged" in m.lower())]
    verdict.expect(said, "no Event says the VM objects were left in place by request (Events: %r)" % (seen,))
    event_writes = [w for w in ok_writes(writes_of(instrumented_api, delete_id)) if w["kind"] == "events"]
    verdict.expect(event_writes, "the delete job recorded no Event")
    vm_writes = [brief(w) for w in writes_of(instrumented_api, delete_id) if w["kind"] in VM_KINDS]
    verdict.expect(not vm_writes, "the delete job touched VM objects: %s" % vm_writes)
    remove_operators_finalizer(api_client, namespace, "hands-off")
    verdict.expect(operator.get(namespace, "hands-off") is None, "the instance did not go once the operator let go")
    verdict.done(delete)


# ======================================================================================================== 8

def test_unparseable_lease_time_counts_as_held(operator, jobs, namespace, api_client, instrumented_api):
    """Defect: a Lease whose renewTime cannot be parsed counts as lapsed, so a create takes over another holder's
    Lease at once."""
    # kube-apiserver (and the stand-in, agreeing) refuse a renewTime that is not a MicroTime (400), so the time that
    # cannot be read here is a missing one: a holder with neither renewTime nor acquireTime.
    instance = operator.create(namespace, "odd-lease", {})
    uid = instance["metadata"]["uid"]
    holder = "job-555@other-controller.example:443"
    HeldLease(api_client, namespace, lease_name(uid), holder, renew_time="absent", renew=False)
    job_id = new_job_id()
    create = jobs.run("create_compute_instance.yml", job_vars(instance, job_id, compute_instance_lock_timeout=5), job_id, timeout=120)

    verdict = Verdict("create vs a Lease with renewTime 'not-a-time' held by %s" % holder)
    lease = read_lease(api_client, namespace, lease_name(uid))
    verdict.expect(holder_of(lease) == holder,
                   "the create took over the Lease (holder now %r)" % (holder_of(lease) if lease else "none: the Lease was deleted",))
    lease_writes = [brief(w) for w in ok_writes(writes_of(instrumented_api, job_id)) if w["kind"] == "leases"]
    verdict.expect(not lease_writes, "the create wrote the Lease: %s" % lease_writes)
    verdict.expect(create.rc != 0, "the create succeeded (rc 0) although the Lease was held")
    verdict.expect("%s/%s" % (namespace, lease_name(uid)) in create.output, "the failure does not name the Lease %s/%s" % (namespace, lease_name(uid)))
    verdict.expect(operator.objects(operator.vm_namespace, uid) == [], "VM objects were made: %s" % operator.objects(operator.vm_namespace, uid))
    verdict.done(create)


# ======================================================================================================== 1b

def test_delete_cancels_a_provision_launched_as_a_workflow(operator, jobs, namespace, api_client, tmp_path):
    """Defect (issue 14, with 1): a provision template that is a workflow job template made the delete fail at
    "Find this instance's active provision jobs" and, before the fix, fail silently. The contract lets the
    operator launch workflow templates: the delete finds the instance's running workflow job, cancels it, and
    deprovisions."""
    from tests.stack.controller import ControllerServer

    templates = [
        {"name": "innabox-create-step", "organization": "innabox", "type": "job", "playbook": "eda_event_job.yml",
         "allow_simultaneous": True, "ask_variables_on_launch": True, "extra_vars": {"eda_job_pause": 120}},
        {"name": "innabox-create-compute-instance", "organization": "innabox", "type": "workflow", "nodes": ["innabox-create-step"],
         "allow_simultaneous": True, "ask_variables_on_launch": True},
    ]
    server = ControllerServer(templates=templates, project_dir=str(ROOT / "tests" / "integration" / "playbooks"),
                              work_dir=str(tmp_path / "controller")).start()
    try:
        live = instance_being_deleted(operator, api_client, namespace, "in-a-workflow")
        headers = {"Authorization": "Bearer %s" % server.token, "Content-Type": "application/json"}

        def call(method, path, body=None):
            request = urllib.request.Request(server.url + path, data=json.dumps(body).encode() if body is not None else None,
                                             headers=headers, method=method)
            with urllib.request.urlopen(request, timeout=10) as answer:  # pylint: disable=consider-using-with
                return json.loads(answer.read() or b"{}")

        template = call("GET", "/api/v2/workflow_job_templates/?name=innabox-create-compute-instance")["results"][0]
        workflow = call("POST", "/api/v2/workflow_job_templates/%d/launch/" % template["id"], {"extra_vars": envelope(live)})
        workflow_id = workflow.get("workflow_job") or workflow["id"]
        wait_until(lambda: call("GET", "/api/v2/workflow_jobs/%d/" % workflow_id)["status"] == "running", 30, what="the workflow job running")

        job_id = new_job_id()
        job = jobs.run("delete_compute_instance.yml", job_vars(live, job_id, compute_instance_controller_host=server.url), job_id,
                       timeout=180, CONTROLLER_OAUTH_TOKEN=server.token, CONTROLLER_HOST=server.url)
        verdict = Verdict("delete while the provision runs as a workflow job")
        verdict.expect(job.rc == 0, "the delete failed (rc %s)" % job.rc)
        status = call("GET", "/api/v2/workflow_jobs/%d/" % workflow_id)["status"]
        verdict.expect(status == "canceled", "the provision's workflow job is %r, not canceled" % status)
        verdict.expect(OURS not in finalizers_of(get_instance(api_client, namespace, "in-a-workflow")), "our finalizer is still there")
        verdict.done(job)
    finally:
        server.stop()
