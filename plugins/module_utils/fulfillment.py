# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The fulfillment service's compute instance templates endpoint, and publishing the catalogue to it idempotently.

GET <url>/api/private/v1/compute_instance_templates lists {"items": [...], "size": N}; POST creates one;
PATCH .../<id> updates one. Bearer token; TLS verified unless told otherwise.
"""

from __future__ import annotations

import json
from typing import Any, Optional
from urllib.parse import quote

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.urls import open_url

from ansible_collections.cloudkit.provisioning.plugins.module_utils.templates import stable

TEMPLATES_PATH = "/api/private/v1/compute_instance_templates"
# The fields a published template consists of; anything else the service adds (timestamps, metadata) is not compared.
PUBLISHED_FIELDS = ("id", "title", "description", "parameters")


class FulfillmentError(Exception):
    """A request the fulfillment service refused or that never reached it."""

    def __init__(self, message: str, status: Optional[int] = None, body: Optional[str] = None):
        super().__init__(message)
        self.status = status
        self.body = body


class FulfillmentClient:
    """The templates endpoint of one fulfillment service."""

    def __init__(
        self,
        url: str,
        token: Optional[str] = None,
        ca_path: Optional[str] = None,
        validate_certs: bool = True,
        timeout: float = 30,
    ):
        self.url = url.rstrip("/")
        self.token = token
        self.ca_path = ca_path
        self.validate_certs = validate_certs
        self.timeout = timeout

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """The decoded JSON answer of one request (None when empty); FulfillmentError otherwise."""
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        where = f"{method} {self.url}{path}"
        try:
            response = open_url(
                self.url + path,
                method=method,
                data=data,
                headers=headers,
                validate_certs=self.validate_certs,
                ca_path=self.ca_path,
                timeout=self.timeout,
                follow_redirects="none",
            )
            text = response.read().decode("utf-8")
        except HTTPError as error:
            detail = error.read().decode("utf-8", "replace")[:1000] if error.fp is not None else ""
            message = f"{where}: HTTP {error.code} {detail or error.reason}"
            raise FulfillmentError(message, error.code, detail) from error
        except URLError as error:
            raise FulfillmentError(f"{where}: {error.reason}") from error
        except OSError as error:  # TLS failures and timeouts outside URLError
            raise FulfillmentError(f"{where}: {error}") from error
        try:
            return json.loads(text) if text.strip() else None
        except ValueError as error:
            raise FulfillmentError(f"{where}: the answer is not JSON: {text[:200]}") from error

    def templates(self) -> dict:
        """The published templates by id."""
        listed = self.request("GET", TEMPLATES_PATH)
        items = (listed or {}).get("items") if isinstance(listed, dict) else None
        if not isinstance(items, list):
            raise FulfillmentError(
                f"GET {self.url}{TEMPLATES_PATH}: expected {{\"items\": [...]}}, got {repr(listed)[:200]}"
            )
        return dict((item.get("id"), item) for item in items if isinstance(item, dict))

    def create(self, template: dict) -> Any:
        return self.request("POST", TEMPLATES_PATH, template)

    def update(self, template: dict) -> Any:
        return self.request("PATCH", "{}/{}".format(TEMPLATES_PATH, quote(template["id"], safe="")), template)


def published_part(item: dict) -> dict:
    """What of a listed template publishing controls."""
    return dict((key, item.get(key)) for key in PUBLISHED_FIELDS)


def publish(client: FulfillmentClient, templates: list, check_mode: bool = False) -> dict:
    """Create the templates the service lacks and update those that differ; the same ones again change nothing.

    Returns created, updated and unchanged ids, changed, and per changed id the before and after (diff).
    """
    existing = client.templates()
    result: dict = {"created": [], "updated": [], "unchanged": [], "diff": []}
    for template in templates:
        desired = published_part(template)
        current = existing.get(desired["id"])
        if current is not None and stable(published_part(current)) == stable(desired):
            result["unchanged"].append(desired["id"])
            continue
        result["diff"].append(
            {
                "before_header": desired["id"],
                "after_header": desired["id"],
                "before": published_part(current) if current is not None else {},
                "after": desired,
            }
        )
        if current is None:
            if not check_mode:
                client.create(desired)
            result["created"].append(desired["id"])
        else:
            if not check_mode:
                client.update(desired)
            result["updated"].append(desired["id"])
    result["changed"] = bool(result["created"] or result["updated"])
    return result
