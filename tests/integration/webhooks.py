"""Talking to a rulebook's webhook as the operator (or an AAP event stream) does, for the rulebook tests.

The fixtures that start ansible-rulebook and the controller stand-in are in conftest.py (`rulebook`, `controller`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
import urllib.error
import urllib.request

TOKEN = "webhook-token"
SECRET = "webhook-hmac-secret"
# A safety net for a hung test, not a measurement.
PATIENCE = 90


def free_port():
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(predicate, what):
    """Poll predicate until it returns something true (returned), or fail after PATIENCE seconds."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("gave up waiting for " + what)


def output(process):
    """What a process started by the `rulebook` fixture has logged so far."""
    process.log.flush()
    process.log.seek(0)
    return process.log.read()


def post(port, path, body, token=TOKEN, secret=SECRET, signature=None, headers=None):
    """POST JSON as the operator (or an event stream) would; returns the HTTP status (None: no answer).

    `headers` are sent as they are, after (so overriding) the Authorization and signature headers made from the other arguments.
    """
    data = json.dumps(body).encode("utf-8")
    sent = {"Content-Type": "application/json"}
    if token:
        sent["Authorization"] = "Bearer " + token
    if secret:
        sent["X-Hub-Signature-256"] = "sha256=" + hmac.new(secret.encode("utf-8"), data, hashlib.sha256).hexdigest()
    if signature:
        sent["X-Hub-Signature-256"] = signature
    sent.update(headers or {})
    request = urllib.request.Request("http://127.0.0.1:%d/%s" % (port, path), data, sent)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):  # refused, reset, or no answer in time (a listener still starting)
        return None
