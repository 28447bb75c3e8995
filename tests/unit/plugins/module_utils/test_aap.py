"""Unit tests for plugins/module_utils/aap.py: status mapping, URL joining, pagination, envelopes, errors (no network)."""

from __future__ import annotations

import io
import json
from urllib.error import HTTPError, URLError

import pytest

from ansible_collections.cloudkit.provisioning.plugins.module_utils import aap

TOKEN = "tOkEn-1234567890"
GATEWAY = "https://aap.example.com/api/controller"


class FakeResponse:
    """What open_url returns: read() gives the body."""

    def __init__(self, body):
        self.body = body if isinstance(body, bytes) else json.dumps(body).encode()

    def read(self):
        return self.body


class Opener:
    """Replaces open_url: answers from a script (dict, bytes, or exception) and records every call."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def __call__(self, url, data=None, headers=None, method=None, **kwargs):
        self.calls.append({"url": url, "data": json.loads(data) if data else None, "headers": headers, "method": method, "kwargs": kwargs})
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return FakeResponse(answer)


def http_error(url, code, body):
    return HTTPError(url, code, "error", {}, io.BytesIO(body if isinstance(body, bytes) else json.dumps(body).encode()))


class Clock:
    """A fake monotonic clock that sleep() advances."""

    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def client(*answers, host=GATEWAY, **kwargs):
    opener = Opener(*answers)
    clock = Clock()
    kwargs.setdefault("token", TOKEN)
    return aap.ControllerClient(host, opener=opener, sleep=clock.sleep, clock=clock, **kwargs), opener, clock


def page(results, next_page=None):
    return {"count": len(results), "next": next_page, "previous": None, "results": results}


def template(template_id, name, organization, **fields):
    data = {"id": template_id, "type": "job_template", "name": name, "url": "/api/controller/v2/job_templates/%d/" % template_id,
            "summary_fields": {"organization": {"id": 1, "name": organization}}, "ask_variables_on_launch": True,
            "related": {"launch": "/api/controller/v2/job_templates/%d/launch/" % template_id}}
    data.update(fields)
    return data


def job(job_id, status, extra_vars=None, **fields):
    data = {"id": job_id, "type": "job", "url": "/api/controller/v2/jobs/%d/" % job_id, "status": status,
            "failed": status in ("failed", "error", "canceled"), "extra_vars": json.dumps(extra_vars or {}),
            "summary_fields": {"job_template": {"id": 3, "name": "create"}, "organization": {"id": 1, "name": "innabox"}}}
    data.update(fields)
    return data


def instance(uid="uid-1", name="vm1", namespace="tenant"):
    return {"apiVersion": "cloudkit.openshift.io/v1alpha1", "kind": "ComputeInstance",
            "metadata": {"name": name, "namespace": namespace, "uid": uid}, "spec": {"templateID": "x"}}


# -- status mapping ---------------------------------------------------------------


@pytest.mark.parametrize("status, state", [
    ("successful", "Succeeded"), ("failed", "Failed"), ("error", "Failed"), ("canceled", "Canceled"),
    ("pending", "Pending"), ("waiting", "Waiting"), ("running", "Running"),
    ("new", "Unknown"), ("never updated", "Unknown"), (None, "Unknown"),
])
def test_status_mapping_follows_the_contract(status, state):
    assert aap.map_status(status) == state


# -- URL joining ------------------------------------------------------------------


@pytest.mark.parametrize("host, root", [
    ("https://aap.example.com/api/controller", "https://aap.example.com/api/controller/"),
    ("https://aap.example.com/api/controller/", "https://aap.example.com/api/controller/"),
    ("https://controller.example.com", "https://controller.example.com/api/"),
    ("https://controller.example.com/", "https://controller.example.com/api/"),
    ("controller.example.com:8443", "https://controller.example.com:8443/api/"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080/api/"),
])
def test_api_root(host, root):
    assert aap.api_root(host) == root


@pytest.mark.parametrize("host, message", [
    ("", "controller_host is required"),
    (None, "controller_host is required"),
    ("ftp://controller.example.com", "http"),
    ("https://admin:%s@controller.example.com" % TOKEN, "must not carry credentials"),
    ("https://controller.example.com/?x=1", "query"),
])
def test_bad_hosts_are_refused_without_echoing_credentials(host, message):
    with pytest.raises(ValueError, match=message) as raised:
        aap.api_root(host)
    assert TOKEN not in str(raised.value)


@pytest.mark.parametrize("host, endpoint, url", [
    (GATEWAY, "jobs/7/", "https://aap.example.com/api/controller/v2/jobs/7/"),
    ("https://controller.example.com", "jobs/7/", "https://controller.example.com/api/v2/jobs/7/"),
    # Paths the API returns are absolute: joined to the host only, never doubled.
    (GATEWAY, "/api/controller/v2/jobs/?page=2", "https://aap.example.com/api/controller/v2/jobs/?page=2"),
    ("https://controller.example.com", "/api/v2/jobs/7/", "https://controller.example.com/api/v2/jobs/7/"),
])
def test_url_joining(host, endpoint, url):
    assert aap.ControllerClient(host).url(endpoint) == url


def test_links_to_another_host_are_not_followed():
    controller, opener, _clock = client(page([template(1, "create", "a")], "https://elsewhere.example.com/api/v2/job_templates/?page=2"))
    with pytest.raises(aap.ControllerError, match="refusing to follow a link to another host"):
        controller.find_template("create", "b")
    assert len(opener.calls) == 1


def test_names_are_url_escaped():
    controller, opener, _clock = client(page([]))
    with pytest.raises(aap.NotFound):
        controller.find_template("create & delete/all", "my org")
    assert opener.calls[0]["url"] == "https://aap.example.com/api/controller/v2/job_templates/?name=create+%26+delete%2Fall"


# -- templates, pagination, launch -----------------------------------------------------


def test_find_template_follows_next_and_scopes_by_organization():
    controller, opener, _clock = client(
        page([template(1, "create", "org-1"), template(2, "create", "org-2")], "/api/controller/v2/job_templates/?name=create&page=2"),
        page([template(3, "create", "org-3"), template(4, "create", "org-4")], "/api/controller/v2/job_templates/?name=create&page=3"),
        page([template(5, "create", "org-5"), template(6, "create", "innabox")]),
    )
    assert controller.find_template("create", "innabox")["id"] == 6
    assert [call["url"].rsplit("/", 1)[1] for call in opener.calls] == ["?name=create", "?name=create&page=2", "?name=create&page=3"]


def test_find_template_without_organization_must_be_unique():
    controller, _opener, _clock = client(page([template(1, "create", "a"), template(2, "create", "b")]))
    with pytest.raises(aap.Ambiguous, match="organizations: a, b"):
        controller.find_template("create")


def test_find_template_not_found_names_what_and_where():
    controller, _opener, _clock = client(page([template(1, "create", "other")]))
    with pytest.raises(aap.NotFound) as raised:
        controller.find_template("create", "innabox", "workflow")
    assert "no workflow job template named 'create' in organization 'innabox'" in raised.value.message
    assert "https://aap.example.com/api/controller/v2/workflow_job_templates/?name=create" in raised.value.message


def test_launch_posts_extra_vars_to_the_launch_link():
    controller, opener, _clock = client({"id": 9, "job": 9, "status": "pending", "url": "/api/controller/v2/jobs/9/", "ignored_fields": {}})
    extra = {"ansible_eda": {"event": {"payload": instance()}}}
    launched = controller.launch(template(6, "create", "innabox"), extra)
    assert launched["id"] == 9
    call = opener.calls[0]
    assert (call["method"], call["url"]) == ("POST", "https://aap.example.com/api/controller/v2/job_templates/6/launch/")
    assert call["data"] == {"extra_vars": extra}
    assert call["headers"]["Authorization"] == "Bearer " + TOKEN
    assert call["headers"]["Content-Type"] == "application/json"


def test_launch_refuses_extra_vars_the_template_would_drop():
    controller, opener, _clock = client()
    with pytest.raises(aap.BadRequest, match="Prompt on launch for Variables"):
        controller.launch(template(6, "create", "innabox", ask_variables_on_launch=False), {"x": 1})
    assert opener.calls == []


def test_workflow_launch_without_related_link_builds_the_path():
    controller, opener, _clock = client({"id": 10, "status": "pending"})
    controller.launch({"id": 4, "name": "flow", "ask_variables_on_launch": True}, {"x": 1}, "workflow")
    assert opener.calls[0]["url"] == "https://aap.example.com/api/controller/v2/workflow_job_templates/4/launch/"


# -- jobs: wait, cancel, find ----------------------------------------------------------------


def test_wait_polls_with_growing_interval_until_terminal():
    controller, opener, clock = client(job(9, "pending"), job(9, "waiting"), job(9, "running"), job(9, "running"), job(9, "successful"))
    finished = controller.wait(9, timeout=60, interval=1.0, max_interval=2.0)
    assert finished["status"] == "successful"
    assert clock.sleeps == [1.0, 1.5, 2.0, 2.0]
    assert {call["url"] for call in opener.calls} == {"https://aap.example.com/api/controller/v2/jobs/9/"}


def test_wait_times_out_with_the_last_job():
    controller, _opener, _clock = client(*[job(9, "running")] * 5)
    with pytest.raises(aap.JobTimeout) as raised:
        controller.wait(9, timeout=3, interval=1.0, max_interval=1.0)
    assert raised.value.job["status"] == "running"
    assert "job 9 is still running after 3 seconds" in raised.value.message


def test_cancel_reports_an_already_finished_job():
    controller, opener, _clock = client(b"", http_error("u", 405, {"detail": 'Method "POST" not allowed.'}))
    assert controller.cancel(9) is True
    assert controller.cancel(9) is False
    assert [(call["method"], call["url"]) for call in opener.calls] == [("POST", "https://aap.example.com/api/controller/v2/jobs/9/cancel/")] * 2


def test_purged_job_is_a_clear_not_found():
    url = "https://aap.example.com/api/controller/v2/workflow_jobs/77/"
    controller, _opener, _clock = client(http_error(url, 404, {"detail": "Not found."}), http_error(url + "cancel/", 404, {"detail": "Not found."}))
    with pytest.raises(aap.NotFound) as raised:
        controller.get_job(77, "workflow")
    assert raised.value.message == "no workflow job 77 at %s (HTTP 404): it never existed, or was purged" % url
    with pytest.raises(aap.NotFound, match="purged"):
        controller.cancel(77, "workflow")


def test_find_jobs_matches_the_uid_in_any_envelope():
    mine = instance()
    jobs = [
        job(1, "running", {"ansible_eda": {"event": {"payload": mine}}}),
        job(2, "pending", {"osac_job_vars": {"resource": mine}}),
        job(3, "waiting", {"compute_instance": mine}),
        job(4, "running", {"compute_instance": instance(uid="someone-else", name="vm2")}),
        job(5, "running", {"unrelated": True}),
        # A list view may give a status the filter should have excluded: never report it as active.
        job(6, "successful", {"compute_instance": mine}),
    ]
    controller, opener, _clock = client(page(jobs[:3], "/api/controller/v2/jobs/?page=2"), page(jobs[3:]))
    found = controller.find_jobs({"id": 3}, uid="uid-1")
    assert [(match["id"], identity.source) for match, identity in found] == [
        (1, "ansible_eda.event.payload"), (2, "osac_job_vars.resource"), (3, "compute_instance")]
    assert opener.calls[0]["url"] == ("https://aap.example.com/api/controller/v2/jobs/?job_template=3"
                                      "&status__in=pending%2Cwaiting%2Crunning&order_by=id")


def test_find_jobs_by_name_when_there_is_no_uid():
    controller, _opener, _clock = client(page([job(1, "running", {"compute_instance": instance(uid=None)}),
                                               job(2, "running", {"compute_instance": instance(uid=None, namespace="other")})]))
    found = controller.find_jobs({"id": 3}, name="vm1", namespace="tenant", template_type="workflow")
    assert [match["id"] for match, _identity in found] == [1]


def test_describe_fetches_the_traceback_of_a_failed_job():
    listed = job(9, "failed")
    detail = dict(listed, result_traceback="Traceback: boom", started="s", finished="f", elapsed=1.5)
    controller, opener, _clock = client(detail)
    facts = controller.describe(listed)
    assert facts["result_traceback"] == "Traceback: boom"
    assert (facts["status"], facts["state"], facts["job_failed"]) == ("failed", "Failed", True)
    assert facts["url"] == "https://aap.example.com/api/controller/v2/jobs/9/"
    assert facts["template"] == {"id": 3, "name": "create"} and facts["organization"] == "innabox"
    assert len(opener.calls) == 1
    ok = controller.describe(job(10, "successful"))
    assert "result_traceback" not in ok and ok["state"] == "Succeeded"


# -- errors and credentials -------------------------------------------------------------------


def test_unauthorized_names_the_url_and_never_the_token():
    url = "https://aap.example.com/api/controller/v2/jobs/9/"
    controller, _opener, _clock = client(http_error(url, 401, {"detail": "Invalid token %s." % TOKEN}))
    with pytest.raises(aap.Unauthorized) as raised:
        controller.get_job(9)
    message = raised.value.message
    assert "the controller at https://aap.example.com refused the token (HTTP 401 on GET %s)" % url in message
    assert TOKEN not in message and TOKEN not in json.dumps(raised.value.to_dict())


def test_basic_auth_and_its_refusal_never_show_the_password():
    controller, opener, _clock = client(http_error("u", 401, {"detail": "Invalid username/password."}), token=None,
                                        username="admin", password="pa55word")
    with pytest.raises(aap.Unauthorized) as raised:
        controller.get_job(1)
    call = opener.calls[0]
    assert "Authorization" not in call["headers"]
    assert call["kwargs"]["url_username"] == "admin" and call["kwargs"]["force_basic_auth"] is True
    assert "username/password of admin" in raised.value.message and "pa55word" not in raised.value.message


def test_transport_errors_are_retried_for_reads_and_redacted():
    controller, opener, clock = client(*[URLError("connection reset while sending %s" % TOKEN)] * 5)
    with pytest.raises(aap.TransportError) as raised:
        controller.get_job(1)
    assert len(opener.calls) == 5 and clock.sleeps == [0.5, 1.0, 2.0, 4.0]
    assert TOKEN not in raised.value.message and aap.REDACTED in raised.value.message


def test_server_errors_retry_reads_but_never_launches():
    controller, opener, _clock = client(http_error("u", 503, b"busy"), job(1, "running"))
    assert controller.get_job(1)["status"] == "running"
    controller, opener, _clock = client(http_error("u", 502, b"<html>bad gateway</html>"))
    with pytest.raises(aap.ServerError, match="HTTP 502: <html>bad gateway</html>"):
        controller.launch(template(6, "create", "innabox"), {"x": 1})
    assert len(opener.calls) == 1


@pytest.mark.parametrize("status, cls", [(400, aap.BadRequest), (403, aap.Forbidden), (409, aap.Conflict), (500, aap.ServerError)])
def test_typed_errors(status, cls):
    controller, _opener, _clock = client(*[http_error("u", status, {"detail": "nope"}) for attempt in range(5)])
    with pytest.raises(cls, match="HTTP %d: nope" % status):
        controller.get("ping/")


def test_token_forms():
    assert aap.ControllerClient(GATEWAY, token={"token": TOKEN}).token == TOKEN
    with pytest.raises(ValueError, match="without a token key"):
        aap.ControllerClient(GATEWAY, token={"id": 1})
    with pytest.raises(ValueError, match="must be a string"):
        aap.ControllerClient(GATEWAY, token=12345)


def test_client_from_params_uses_the_awx_option_names():
    params = {"controller_host": GATEWAY, "controller_oauthtoken": TOKEN, "controller_username": None,
              "controller_password": None, "validate_certs": False, "request_timeout": 3.0}
    controller = aap.client_from_params(params, opener=Opener(job(1, "running")))
    controller.get_job(1)
    call = controller.opener.calls[0]
    assert call["kwargs"]["validate_certs"] is False and call["kwargs"]["timeout"] == 3.0
    assert set(aap.controller_argument_spec()) == set(params)
