# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""A client for the automation controller REST API (job templates, launches, jobs, cancels).

Connection options are awx.awx's (same names, aliases and environment variables), so an AAP
"Red Hat Ansible Automation Platform" credential works unchanged. Requests go through
ansible.module_utils.urls.open_url: no third-party library is needed.

Paths are joined once, in api_root(): a base URL with a path (AAP 2.5's gateway,
``https://aap.example.com/api/controller``) is the API root as given; a bare host
(``https://controller.example.com``) means ``/api/``. Endpoints are relative to ``<root>v2/``
(``jobs/7/``), and absolute paths that the API itself returns (``url``, ``next``, ``related``)
are joined with the scheme and host only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, Optional

from urllib.error import HTTPError, URLError
from urllib.parse import urlencode, urlsplit, urlunsplit

from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import open_url

from ansible_collections.cloudkit.provisioning.plugins.module_utils.envelope import EnvelopeError, identify
from ansible_collections.cloudkit.provisioning.plugins.module_utils.names import USER_AGENT
from ansible_collections.cloudkit.provisioning.plugins.module_utils.retry import NO_RETRY, Retry
from ansible_collections.cloudkit.provisioning.plugins.module_utils.times import parse_time

# docs/contract.md, Status (job states), with Pending/Waiting/Running kept apart (later operator versions).
STATE_BY_STATUS = {
    "successful": "Succeeded",
    "failed": "Failed",
    "error": "Failed",
    "canceled": "Canceled",
    "pending": "Pending",
    "waiting": "Waiting",
    "running": "Running",
}
ACTIVE_STATUSES = ("pending", "waiting", "running")
TERMINAL_STATUSES = ("successful", "failed", "error", "canceled")
TERMINAL_STATES = ("Succeeded", "Failed", "Canceled")

# template_type -> where its templates and jobs live in the API.
KINDS = {
    "job": {"templates": "job_templates", "jobs": "jobs", "template_field": "job_template", "label": "job template"},
    "workflow": {
        "templates": "workflow_job_templates",
        "jobs": "workflow_jobs",
        "template_field": "workflow_job_template",
        "label": "workflow job template",
    },
}

API_VERSION = "v2/"
DEFAULT_REQUEST_TIMEOUT = 10.0
MAX_PAGES = 1000
REDACTED = "********"


# Connection options: awx.awx's names and aliases, its environment variables plus AAP 2.5's AAP_*.
CONTROLLER_ARG_SPEC = {
    # Not required by the spec, so the environment can supply it; api_root() refuses a missing one.
    "controller_host": {"type": "str", "aliases": ["tower_host"]},
    "controller_oauthtoken": {"type": "raw", "no_log": True, "aliases": ["tower_oauthtoken"]},
    "controller_username": {"type": "str", "aliases": ["tower_username"]},
    "controller_password": {"type": "str", "no_log": True, "aliases": ["tower_password"]},
    "validate_certs": {"type": "bool", "aliases": ["tower_verify_ssl"]},
    "request_timeout": {"type": "float"},
}
CONTROLLER_ENV = {
    "controller_host": ["CONTROLLER_HOST", "TOWER_HOST", "AAP_HOSTNAME"],
    "controller_oauthtoken": ["CONTROLLER_OAUTH_TOKEN", "TOWER_OAUTH_TOKEN", "AAP_TOKEN"],
    "controller_username": ["CONTROLLER_USERNAME", "TOWER_USERNAME", "AAP_USERNAME"],
    "controller_password": ["CONTROLLER_PASSWORD", "TOWER_PASSWORD", "AAP_PASSWORD"],
    "validate_certs": ["CONTROLLER_VERIFY_SSL", "TOWER_VERIFY_SSL", "AAP_VALIDATE_CERTS"],
    "request_timeout": ["CONTROLLER_REQUEST_TIMEOUT", "AAP_REQUEST_TIMEOUT"],
}


def controller_argument_spec() -> dict[str, dict[str, Any]]:
    """The connection options with their environment fallbacks, for AnsibleModule."""
    from ansible.module_utils.basic import env_fallback

    return dict(
        (option, dict(settings, fallback=(env_fallback, CONTROLLER_ENV[option])))
        for option, settings in CONTROLLER_ARG_SPEC.items()
    )


def controller_argument_spec_with_kube() -> dict[str, dict[str, Any]]:
    """The connection options for a module that also talks to Kubernetes: no aliases, and the controller's
    validate_certs is controller_validate_certs (validate_certs is the Kubernetes API's there)."""
    options = controller_argument_spec()
    spec = {}
    for option in ("controller_host", "controller_oauthtoken", "controller_username", "controller_password"):
        spec[option] = dict(options[option])
        spec[option].pop("aliases", None)
    spec["controller_validate_certs"] = dict(options["validate_certs"])
    spec["controller_validate_certs"].pop("aliases", None)
    return spec


def client_from_kube_module_params(params: Mapping[str, Any], **kwargs: Any) -> Optional[ControllerClient]:
    """A ControllerClient from controller_argument_spec_with_kube's options; None when no controller_host is set."""
    if not params.get("controller_host"):
        return None
    return ControllerClient(
        params["controller_host"],
        token=params.get("controller_oauthtoken"),
        username=params.get("controller_username"),
        password=params.get("controller_password"),
        validate_certs=params.get("controller_validate_certs"),
        **kwargs,
    )


def client_from_params(params: Mapping[str, Any], **kwargs: Any) -> ControllerClient:
    """A ControllerClient from module parameters (controller_argument_spec's options)."""
    return ControllerClient(
        params.get("controller_host"),
        token=params.get("controller_oauthtoken"),
        username=params.get("controller_username"),
        password=params.get("controller_password"),
        validate_certs=params.get("validate_certs"),
        request_timeout=params.get("request_timeout"),
        **kwargs,
    )


def map_status(status: Optional[str]) -> str:
    """The ComputeInstance job state for an AAP job status (docs/contract.md, Status)."""
    return STATE_BY_STATUS.get(status, "Unknown")


def api_root(host: str) -> str:
    """The API root URL (ending in /) for controller_host: its path when it has one, else /api/."""
    if not host or not isinstance(host, str):
        raise ValueError("controller_host is required (or set CONTROLLER_HOST)")
    host = host.strip()
    if "://" not in host:
        host = "https://" + host
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"controller_host must be an http(s) URL or a host name, got {_origin(parts)!r}")
    if parts.username or parts.password:
        raise ValueError(
            "controller_host must not carry credentials: use controller_oauthtoken or "
            "controller_username/controller_password"
        )
    if parts.query or parts.fragment:
        raise ValueError("controller_host must not have a query or fragment")
    path = parts.path.rstrip("/") or "/api"
    return urlunsplit((parts.scheme, parts.netloc, path + "/", "", ""))


def _origin(parts):
    host = parts.hostname or ""
    return "{}://{}{}".format(parts.scheme, host, f":{parts.port}" if parts.port else "")


def _detail(body):
    """The controller's explanation from an error body: its detail, else the body itself (shortened)."""
    if not body:
        return ""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:500]
    if isinstance(data, dict) and isinstance(data.get("detail"), str):
        return data["detail"]
    return json.dumps(data, sort_keys=True)[:500]


class ControllerError(Exception):
    """An error talking to the controller; the message names the URL and never holds a credential."""

    def __init__(self, message, status=None, url=None, method=None, detail=None, job=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.url = url
        self.method = method
        self.detail = detail
        self.job = job
        self.retryable = False

    def to_dict(self):
        """For module results: what was asked, and what the controller answered."""
        return {"status": self.status, "url": self.url, "method": self.method, "detail": self.detail}


class BadRequest(ControllerError):
    """400: the controller refused the request's data."""


class Unauthorized(ControllerError):
    """401: the token (or username/password) was refused."""


class Forbidden(ControllerError):
    """403: authenticated, but not allowed."""


class NotFound(ControllerError):
    """404: no such object (never existed, or purged), or no template of that name."""


class MethodNotAllowed(ControllerError):
    """405: for a cancel, the job has already finished."""


class Conflict(ControllerError):
    """409: the controller's state does not allow the request."""


class ServerError(ControllerError):
    """5xx from the controller or the gateway in front of it."""


class TransportError(ControllerError):
    """No HTTP answer: refused, reset, timed out, TLS failure."""


class Ambiguous(ControllerError):
    """Several templates match: the organization is needed to tell them apart."""


class JobTimeout(ControllerError):
    """The job did not finish in time; .job is its last state."""


_ERROR_BY_STATUS = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
}
# GETs are retried on these (a gateway restarting, the controller busy); launches never are.
# A controller failing over or restarting answers 500 as well as 502-504; reads and cancels are safe to send again.
_RETRY_STATUSES = (429, 500, 502, 503, 504)


class ControllerClient:
    """JSON over HTTP to the controller, with typed errors and pagination.

    `opener` defaults to open_url (same signature); tests pass a fake. Credentials are kept
    out of every message this client produces.
    """

    def __init__(
        self,
        host,
        token=None,
        username=None,
        password=None,
        validate_certs=True,
        request_timeout=None,
        opener=None,
        sleep=time.sleep,
        clock=time.monotonic,
        attempts=5,
    ):
        self.root = api_root(host)
        if isinstance(token, dict):
            if not token.get("token"):
                raise ValueError("controller_oauthtoken is a dictionary without a token key")
            token = token["token"]
        if token is not None and not isinstance(token, str):
            raise ValueError(
                f"controller_oauthtoken must be a string or a dictionary with a token key, got {type(token).__name__}"
            )
        self.token = token or None
        self.username = username or None
        self.password = password or None
        self.validate_certs = True if validate_certs is None else bool(validate_certs)
        self.request_timeout = float(request_timeout or DEFAULT_REQUEST_TIMEOUT)
        self.opener = opener or open_url
        self.sleep = sleep
        self.clock = clock
        self.attempts = max(1, attempts)
        # 0.5, 1, 2, 4 s between attempts: a controller restarting behind a gateway is back within seconds.
        self.retry = Retry(attempts=self.attempts, base_delay=0.5, max_delay=5.0, sleep=sleep, jitter=False)

    # -- plumbing ---------------------------------------------------------------

    @property
    def origin(self) -> str:
        """scheme://host[:port] of the controller."""
        parts = urlsplit(self.root)
        return urlunsplit((parts.scheme, parts.netloc, "", "", ""))

    def url(self, endpoint: str, query: Optional[Mapping[str, Any]] = None) -> str:
        """Absolute URL of `endpoint`: relative to ``<API root>v2/``, or an absolute path the API returned."""
        if endpoint.startswith(("http://", "https://")):
            if urlsplit(endpoint).netloc != urlsplit(self.root).netloc:
                # The credentials go with every request: never to a host the user did not name.
                raise ControllerError(
                    f"refusing to follow a link to another host than {self.origin}: {endpoint}", url=endpoint
                )
            url = endpoint
        elif endpoint.startswith("/"):
            url = self.origin + endpoint
        else:
            url = self.root + API_VERSION + endpoint
        if query:
            url += ("&" if "?" in url else "?") + urlencode(query)
        return url

    def redact(self, text: str) -> str:
        """`text` with any credential of this client replaced."""
        for secret in (self.token, self.password):
            if secret:
                text = text.replace(secret, REDACTED)
        return text

    def _credential_name(self):
        if self.token:
            return "token"
        if self.username:
            return f"username/password of {self.username}"
        return "anonymous request (no controller_oauthtoken and no controller_username given)"

    def _error(self, method, url, status, body):
        detail = self.redact(_detail(body))
        if status == 401:
            message = "the controller at {} refused the {} (HTTP 401 on {} {}){}".format(
                self.origin, self._credential_name(), method, url, f": {detail}" if detail else ""
            )
            cls = Unauthorized
        else:
            message = "{} {}: HTTP {}{}".format(method, url, status, f": {detail}" if detail else "")
            cls = _ERROR_BY_STATUS.get(status, ServerError if status >= 500 else ControllerError)
        return cls(self.redact(message), status=status, url=url, method=method, detail=detail)

    def request(self, method: str, endpoint: str, data: Any = None, query: Optional[Mapping[str, Any]] = None,
                idempotent: Optional[bool] = None) -> Any:
        """The decoded JSON answer ({} when empty); raises a ControllerError subclass.

        GETs (and writes marked `idempotent`, such as a cancel) are retried on 429, 5xx and no answer,
        backing off 0.5, 1, 2, 4 s; a launch is never sent twice.
        """
        url = self.url(endpoint, query)
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        auth = {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        elif self.username:
            auth = {"url_username": self.username, "url_password": self.password or "", "force_basic_auth": True}
        body = None
        if data is not None:
            body = json.dumps(data)
            headers["Content-Type"] = "application/json"
        retry = self.retry if (method == "GET" if idempotent is None else idempotent) else NO_RETRY
        return retry.run(
            lambda: self._send(method, url, body, headers, auth),
            ControllerError,
            retryable=lambda error: error.retryable,
        )

    def _send(self, method, url, body, headers, auth):
        """One exchange; a ControllerError says with .retryable whether another try may help."""
        try:
            response = self.opener(
                url,
                data=body,
                headers=headers,
                method=method,
                validate_certs=self.validate_certs,
                timeout=self.request_timeout,
                http_agent=USER_AGENT,
                **auth,
            )
            raw = response.read()
        except HTTPError as exc:
            try:
                error_body = exc.read()
            except Exception:  # the body is only a hint; the status is what matters
                error_body = b""
            error = self._error(method, url, exc.code, error_body)
            error.retryable = exc.code in _RETRY_STATUSES
            raise error from exc
        except (URLError, UrlsConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            error = TransportError(
                self.redact(f"{method} {url}: no answer from the controller: {reason}"), url=url, method=method
            )
            error.retryable = True
            raise error from exc
        if not raw or not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ControllerError(
                f"{method} {url}: the answer is not JSON (is controller_host the controller or gateway URL?)",
                url=url,
                method=method,
            ) from exc

    def get(self, endpoint: str, query: Optional[Mapping[str, Any]] = None) -> Any:
        """GET, decoded."""
        return self.request("GET", endpoint, query=query)

    def post(self, endpoint: str, data: Any = None, idempotent: bool = False) -> Any:
        """POST a JSON body, decoded answer."""
        return self.request("POST", endpoint, data=data if data is not None else {}, idempotent=idempotent)

    def get_all(self, endpoint: str, query: Optional[Mapping[str, Any]] = None) -> list[dict[str, Any]]:
        """Every item of a list endpoint, following `next` page after page."""
        page = self.get(endpoint, query)
        for _page_number in range(MAX_PAGES):
            yield from page.get("results") or []
            next_page = page.get("next")
            if not next_page:
                return
            page = self.get(next_page)
        raise ControllerError(f"{self.url(endpoint, query)}: more than {MAX_PAGES} pages")

    # -- templates and jobs -----------------------------------------------------

    def find_template(self, name: str, organization: Optional[str] = None,
                      template_type: str = "job") -> dict[str, Any]:
        """The job (or workflow job) template called `name`, in `organization` when given.

        Scoped by summary_fields.organization.name, like ansible-rulebook; without an
        organization the name must be unique.
        """
        kind = KINDS[template_type]
        endpoint = kind["templates"] + "/"
        matches = []
        for template in self.get_all(endpoint, {"name": name}):
            if template.get("name") != name:
                continue
            if organization is None or _organization(template) == organization:
                matches.append(template)
        where = f" in organization {organization!r}" if organization is not None else ""
        if not matches:
            raise NotFound(
                "no {} named {!r}{} at {}".format(kind["label"], name, where, self.url(endpoint, {"name": name})),
                status=404,
                url=self.url(endpoint, {"name": name}),
                method="GET",
            )
        if len(matches) > 1:
            organizations = ", ".join(sorted(str(_organization(t)) for t in matches))
            raise Ambiguous(
                f"{len(matches)} {kind['label']}s are named {name!r} (organizations: {organizations}): set organization"
            )
        return matches[0]

    def find_template_any(self, name: str, organization: Optional[str] = None) -> tuple[dict[str, Any], str]:
        """(template, template_type): the job template called `name`, else the workflow job template of that name."""
        try:
            return self.find_template(name, organization, "job"), "job"
        except NotFound:
            return self.find_template(name, organization, "workflow"), "workflow"

    def launch(self, template: dict[str, Any], extra_vars: Optional[dict[str, Any]] = None,
               template_type: str = "job") -> dict[str, Any]:
        """Launch a template (as returned by find_template) with extra_vars; returns the new job."""
        kind = KINDS[template_type]
        if extra_vars and not accepts_extra_vars(template):
            # The controller would launch anyway and drop the variables: the job would not know its instance.
            raise BadRequest(
                "{} {!r} does not prompt for variables on launch: enable Prompt on launch for Variables".format(
                    kind["label"], template.get("name")
                )
            )
        endpoint = (template.get("related") or {}).get("launch") or "{}/{}/launch/".format(
            kind["templates"], template["id"]
        )
        data = {}
        if extra_vars is not None:
            data["extra_vars"] = extra_vars
        return self.post(endpoint, data)

    def job_endpoint(self, job_id: Any, template_type: str = "job") -> str:
        """``jobs/<id>/`` or ``workflow_jobs/<id>/``."""
        return f"{KINDS[template_type]['jobs']}/{int(job_id)}/"

    def get_job(self, job_id: Any, template_type: str = "job") -> dict[str, Any]:
        """One job (detail view: it has result_traceback)."""
        try:
            return self.get(self.job_endpoint(job_id, template_type))
        except NotFound as exc:
            raise _job_not_found(exc, job_id, template_type) from exc

    def wait(self, job_id: Any, template_type: str = "job", timeout: float = 600, interval: float = 1.0,
             max_interval: float = 10.0) -> dict[str, Any]:
        """Poll until the job is terminal (interval growing by half each time, up to max_interval)."""
        deadline = self.clock() + timeout
        delay = max(0.1, interval)
        while True:
            job = self.get_job(job_id, template_type)
            if job.get("status") in TERMINAL_STATUSES:
                return job
            remaining = deadline - self.clock()
            if remaining <= 0:
                url = self.url(self.job_endpoint(job_id, template_type))
                raise JobTimeout(
                    "job {} is still {} after {} seconds ({})".format(job_id, job.get("status"), timeout, url),
                    url=url,
                    method="GET",
                    job=job,
                )
            self.sleep(min(delay, remaining))
            delay = min(delay * 1.5, max_interval)

    def cancel(self, job_id: Any, template_type: str = "job") -> bool:
        """Ask the controller to cancel a job: True when asked, False when it had already finished (405)."""
        endpoint = self.job_endpoint(job_id, template_type) + "cancel/"
        try:
            self.post(endpoint, idempotent=True)  # asking twice is harmless: a finished job answers 405
        except MethodNotAllowed:
            return False
        except NotFound as exc:
            raise _job_not_found(exc, job_id, template_type) from exc
        return True

    def active_jobs(self, template, template_type="job"):
        """The template's jobs that are pending, waiting or running, oldest first."""
        kind = KINDS[template_type]
        query = {kind["template_field"]: template["id"], "status__in": ",".join(ACTIVE_STATUSES), "order_by": "id"}
        return [job for job in self.get_all(kind["jobs"] + "/", query) if job.get("status") in ACTIVE_STATUSES]

    def jobs_created_since(self, template, since, template_type="job"):
        """The template's jobs (any status) created at or after `since` (RFC 3339), oldest first."""
        kind = KINDS[template_type]
        query = {kind["template_field"]: template["id"], "created__gte": since, "order_by": "id"}
        floor = parse_time(since)
        # Filtered here too: a controller that ignores the lookup still answers with every job.
        return [job for job in self.get_all(kind["jobs"] + "/", query)
                if floor is None or (parse_time(job.get("created")) or floor) >= floor]

    def instance_jobs(self, template, template_type="job", jobs=None):
        """Jobs of the template that carry a ComputeInstance, as (job, identity) pairs: the active ones unless `jobs`
        (a list of the template's jobs) is given.

        The instance is recognised in any envelope of the job's extra_vars (envelope.identify); jobs
        whose extra vars carry no instance are someone else's and are skipped.
        """
        for job in self.active_jobs(template, template_type) if jobs is None else jobs:
            extra_vars = job.get("extra_vars")
            if extra_vars is None:
                extra_vars = self.get_job(job["id"], template_type).get("extra_vars")
                job = dict(job, extra_vars=extra_vars)
            try:
                identity = identify(extra_vars or "{}")
            except EnvelopeError:
                continue
            yield job, identity

    def find_jobs(self, template, uid=None, name=None, namespace=None, template_type="job"):
        """Active jobs of the template about one ComputeInstance (instance_jobs), as (job, identity) pairs.

        The instance is matched by metadata.uid when `uid` is given, else by namespace and name.
        """
        if not uid and not (name and namespace):
            raise ValueError("find_jobs needs the instance uid, or its name and namespace")
        return [
            (job, identity)
            for job, identity in self.instance_jobs(template, template_type)
            if ((identity.uid == uid) if uid else (identity.name, identity.namespace) == (name, namespace))
        ]

    def describe(self, job, template_type="job"):
        """Module-facing facts of a job; a failed job's result_traceback is fetched when the view lacked it."""
        status = job.get("status")
        if status in ("failed", "error") and "result_traceback" not in job:
            job = self.get_job(job["id"], template_type)
        summary = job.get("summary_fields") or {}
        template = summary.get(KINDS[template_type]["template_field"]) or summary.get("unified_job_template") or {}
        facts = {
            "id": job.get("id"),
            "type": job.get("type"),
            "url": self.url(job["url"]) if job.get("url") else self.url(self.job_endpoint(job["id"], template_type)),
            "status": status,
            "state": map_status(status),
            # Not `failed`: that key would fail the task of whoever returns these facts.
            "job_failed": bool(job.get("failed")),
            "created": job.get("created"),
            "started": job.get("started"),
            "finished": job.get("finished"),
            "elapsed": job.get("elapsed"),
            "job_explanation": job.get("job_explanation") or "",
            "launch_type": job.get("launch_type"),
            "template": {"id": template.get("id"), "name": template.get("name")},
            "organization": (summary.get("organization") or {}).get("name"),
        }
        if facts["state"] == "Failed":
            facts["result_traceback"] = job.get("result_traceback") or ""
        return facts


def _job_not_found(error, job_id, template_type):
    """A 404 on a job, said plainly."""
    label = "workflow job" if template_type == "workflow" else "job"
    return NotFound(
        f"no {label} {job_id} at {error.url} (HTTP 404): it never existed, or was purged",
        status=404,
        url=error.url,
        method=error.method,
        detail=error.detail,
    )


def accepts_extra_vars(template):
    """Whether a launch's extra vars reach the job: Prompt on launch for Variables, or a survey."""
    return bool(template.get("ask_variables_on_launch") or template.get("survey_enabled"))


def _organization(template):
    return ((template.get("summary_fields") or {}).get("organization") or {}).get("name")


def template_facts(client, template, template_type="job"):
    """What a module reports about a template."""
    return {
        "id": template.get("id"),
        "name": template.get("name"),
        "type": template.get("type") or KINDS[template_type]["templates"][:-1],
        "organization": _organization(template),
        "url": client.url(template["url"]) if template.get("url") else None,
    }
