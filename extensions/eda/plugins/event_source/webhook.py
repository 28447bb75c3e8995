# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""ansible-rulebook's built-in webhook source, with a required token and an optional HMAC check.

The built-in source checks an HMAC whenever an hmac_secret argument is present,
and a rulebook cannot leave an argument out based on a variable. This source
passes the arguments on to the built-in one, without the HMAC ones when the
secret is empty, so one rulebook serves token-only and token-plus-HMAC setups.
"""

from __future__ import annotations

import asyncio
from typing import Any

DOCUMENTATION = r"""
---
short_description: Receive webhook POSTs (ansible-rulebook's built-in webhook), token required, HMAC optional.
description:
  - Runs ansible-rulebook's built-in C(eda.builtin.webhook) source with the same arguments. Each request must carry
    C(Authorization: Bearer <token>). When O(hmac_secret) is not empty, each request must also carry a valid signature
    of its body in O(hmac_header); when it is empty, no signature is checked.
  - Events are those of the built-in source, C({payload, meta: {endpoint, headers}}), where C(endpoint) is the URL path.
options:
  host:
    description: Address to listen on.
    type: str
    default: 0.0.0.0
  port:
    description: Port to listen on.
    type: int
    required: true
  token:
    description: The bearer token every request must carry. An empty token is refused, so the endpoint is never open.
    type: str
    required: true
  hmac_secret:
    description: Secret of the HMAC signature of the body; empty turns the HMAC check off.
    type: str
    default: ""
  hmac_algo:
    description: Hash of the HMAC.
    type: str
    default: sha256
  hmac_header:
    description: Header holding the signature (optionally prefixed with C(<algo>=)).
    type: str
    default: x-hub-signature-256
  hmac_format:
    description: Encoding of the signature, C(hex) or C(base64).
    type: str
    default: hex
  certfile:
    description: Server certificate, to serve HTTPS.
    type: str
  keyfile:
    description: Key of O(certfile).
    type: str
"""

EXAMPLES = r"""
- name: ComputeInstance webhook
  hosts: all
  sources:
    - name: operator_webhook
      cloudkit.provisioning.webhook:
        port: 5000
        token: "{{ webhook_token }}"
        hmac_secret: "{{ webhook_hmac_secret | default('') }}"
  rules:
    - name: Show what arrived
      condition: event.meta.endpoint is defined
      action:
        debug:
"""

HMAC_ARGUMENTS = ("hmac_secret", "hmac_algo", "hmac_header", "hmac_format")


def builtin_arguments(args: dict[str, Any]) -> dict[str, Any]:
    """The built-in source's arguments: token required, the HMAC ones only with a secret."""
    token = str(args.get("token") or "").strip()
    if not token:
        raise ValueError("webhook token is empty: set it (clients send 'Authorization: Bearer <token>')")
    passed = dict(args, token=token)
    if not str(args.get("hmac_secret") or ""):
        for key in HMAC_ARGUMENTS:
            passed.pop(key, None)
    return passed


async def main(queue: asyncio.Queue, args: dict[str, Any]) -> None:
    """Serve webhook requests until cancelled."""
    from ansible_rulebook.event_source.webhook import main as builtin_main

    await builtin_main(queue, builtin_arguments(args))


if __name__ == "__main__":

    class MockQueue(asyncio.Queue):
        """Prints events instead of queueing them."""

        async def put(self, item):
            print(item)  # noqa: T201

    asyncio.run(main(MockQueue(), {"port": 5000, "token": "secret"}))
