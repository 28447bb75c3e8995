"""Unit tests for the webhook event source wrapper: token required, HMAC arguments only with a secret."""

from __future__ import annotations

import pytest

from ansible_collections.cloudkit.provisioning.extensions.eda.plugins.event_source.webhook import builtin_arguments


def test_hmac_arguments_are_dropped_without_a_secret():
    args = {"port": 5000, "token": "t", "hmac_secret": "", "hmac_algo": "sha256", "hmac_header": "x-sig", "hmac_format": "hex"}
    assert builtin_arguments(args) == {"port": 5000, "token": "t"}


def test_hmac_arguments_are_kept_with_a_secret():
    args = {"port": 5000, "token": " t ", "hmac_secret": "s", "hmac_algo": "sha512"}
    assert builtin_arguments(args) == {"port": 5000, "token": "t", "hmac_secret": "s", "hmac_algo": "sha512"}


@pytest.mark.parametrize("token", [None, "", "   "])
def test_an_empty_token_is_refused(token):
    with pytest.raises(ValueError, match="webhook token is empty"):
        builtin_arguments({"port": 5000, "token": token})
