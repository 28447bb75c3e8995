"""HTTP to the Ansible side: EDA webhook POSTs and the AAP controller REST API (urllib only, one call per method)."""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

HTTP_TIMEOUT = 10.0
# Errors of one HTTP exchange: refused/reset connections, timeouts, garbled bodies.
NETWORK_ERRORS = (urllib.error.URLError, OSError, ValueError)


class AAPError(Exception):
    """An AAP call that did not give the expected answer; ``status`` is the HTTP status (None: no answer)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def request_json(method: str, url: str, body=None, headers: dict | None = None, timeout: float = HTTP_TIMEOUT) -> tuple[int, object]:
    """(HTTP status, parsed JSON body or None) of one request; HTTP error statuses are returned, network errors raised."""
    data = None if body is None else json.dumps(body).encode('utf-8')
    hdrs = {'Accept': 'application/json'}
    if data is not None:
        hdrs['Content-Type'] = 'application/json'
    hdrs.update(headers or {})
    req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
        exc.close()
    text = raw.decode('utf-8', 'replace').strip() if raw else ''
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = {'text': text}
    return status, parsed


def post_webhook(url: str, obj: dict, headers: dict | None = None, timeout: float = HTTP_TIMEOUT) -> int:
    """POST the object as JSON to an EDA webhook; the HTTP status (any 2xx = sent). Network errors are raised."""
    status, _body = request_json('POST', url, obj, headers, timeout)
    return status


class AAPClient:
    """The few controller calls the operator makes; ``base`` ends in ``/api/controller``."""

    def __init__(self, base: str, token: str | None, timeout: float = HTTP_TIMEOUT):
        self.base = base.rstrip('/')
        self.timeout = timeout
        self.headers = {'Authorization': f'Bearer {token}'} if token else {}
        self._templates: dict = {}

    def _call(self, method: str, path: str, body=None) -> tuple[int, object]:
        return request_json(method, f'{self.base}/v2/{path}', body, self.headers, self.timeout)

    def find_template(self, name: str) -> tuple[str, int]:
        """(kind, id) of the job template named ``name``, else of the workflow job template; kind is the URL collection name."""
        if name in self._templates:
            return self._templates[name]
        for kind in ('job_templates', 'workflow_job_templates'):
            status, body = self._call('GET', f'{kind}/?{urllib.parse.urlencode({"name": name})}')
            if status != 200:
                raise AAPError(f'GET {kind}?name={name}: HTTP {status}', status)
            results = (body or {}).get('results') or []
            if results:
                self._templates[name] = (kind, int(results[0]['id']))
                return self._templates[name]
        raise AAPError(f'no job template or workflow job template named {name!r}', 404)

    def launch(self, name: str, extra_vars: dict) -> tuple[str, str]:
        """Launch the template; (job collection: ``jobs`` or ``workflow_jobs``, job id)."""
        kind, template_id = self.find_template(name)
        status, body = self._call('POST', f'{kind}/{template_id}/launch/', {'extra_vars': extra_vars})
        if status == 404:
            self._templates.pop(name, None)
        if status not in (200, 201):
            raise AAPError(f'launch of {name!r} (template {template_id}): HTTP {status} {body}', status)
        body = body or {}
        job_id = body.get('job') or body.get('workflow_job') or body.get('id')
        if job_id is None:
            raise AAPError(f'launch of {name!r}: no job id in the answer {body}', status)
        return ('workflow_jobs' if kind == 'workflow_job_templates' else 'jobs'), str(job_id)

    def job(self, collection: str, job_id: str) -> dict:
        """The job's JSON (``status``, ``failed``, ``job_explanation``...)."""
        status, body = self._call('GET', f'{collection}/{job_id}/')
        if status != 200 or not isinstance(body, dict):
            raise AAPError(f'GET {collection}/{job_id}: HTTP {status}', status)
        return body

    def cancel(self, collection: str, job_id: str) -> int:
        """POST cancel; the HTTP status (202 = cancel requested, 405 = already finished)."""
        status, _body = self._call('POST', f'{collection}/{job_id}/cancel/')
        return status

    def cached_kind(self, name: str) -> str:
        """The collection a template was found in (``job_templates`` when it has not been looked up)."""
        return self._templates.get(name, ('job_templates', 0))[0]
