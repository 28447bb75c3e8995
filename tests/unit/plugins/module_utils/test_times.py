"""Unit tests for plugins/module_utils/times.py: one way to read and write Kubernetes times."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.cloudkit.provisioning.plugins.module_utils.times import micro_time, parse_time, rfc3339

UTC = datetime.timezone.utc


@pytest.mark.parametrize("text, expected", [
    ("2026-11-30T22:00:01Z", datetime.datetime(2026, 11, 30, 22, 0, 1, tzinfo=UTC)),
    ("2026-11-30T22:00:01.123456Z", datetime.datetime(2026, 11, 30, 22, 0, 1, 123456, tzinfo=UTC)),
    ("2026-11-30T22:00:01.1Z", datetime.datetime(2026, 11, 30, 22, 0, 1, 100000, tzinfo=UTC)),
    ("2026-11-30T22:00:01.123456789Z", datetime.datetime(2026, 11, 30, 22, 0, 1, 123456, tzinfo=UTC)),
    ("2026-11-30T23:30:01+01:30", datetime.datetime(2026, 11, 30, 22, 0, 1, tzinfo=UTC)),
    ("2026-11-30T20:00:01-02:00", datetime.datetime(2026, 11, 30, 22, 0, 1, tzinfo=UTC)),
])
def test_rfc3339_times_parse_to_utc(text, expected):
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", [None, "", "not-a-time", "2026-02-30T00:00:00Z", "2026-11-30 22:00", 1700000000, "2026-11-30T22:00:01"])
def test_anything_else_is_not_a_time(text):
    assert parse_time(text) is None


def test_written_times_read_back():
    moment = datetime.datetime(2026, 11, 30, 22, 0, 1, 5, tzinfo=UTC)
    assert micro_time(moment) == "2026-11-30T22:00:01.000005Z" and parse_time(micro_time(moment)) == moment
    assert rfc3339(moment) == "2026-11-30T22:00:01Z"
