"""Unit tests for plugins/module_utils/retry.py: the one retry policy every retry loop runs on."""

from __future__ import annotations

import random

import pytest

from ansible_collections.cloudkit.provisioning.plugins.module_utils.retry import NO_RETRY, Retry


class Flaky(Exception):
    def __init__(self, message="flaky", retry_after=None):
        super().__init__(message)
        self.retry_after = retry_after


class Fatal(Exception):
    pass


def flaky(failures, result="done"):
    """A call that raises the given errors first, then returns `result`; `calls` counts the attempts."""
    pending = list(failures)

    def call():
        call.calls += 1
        if pending:
            raise pending.pop(0)
        return result
    call.calls = 0
    return call


def policy(attempts=4, **kwargs):
    sleeps = []
    return Retry(attempts=attempts, base_delay=0.5, max_delay=3.0, sleep=sleeps.append, rng=random.Random(1), **kwargs), sleeps


def test_retries_the_named_errors_then_returns():
    retry, sleeps = policy()
    call = flaky([Flaky(), Flaky()])
    assert retry.run(call, Flaky) == "done"
    assert call.calls == 3 and len(sleeps) == 2
    assert all(0 <= wait <= 0.5 * 2 ** number for number, wait in enumerate(sleeps))


def test_bounded_attempts_raise_the_last_error():
    retry, sleeps = policy(attempts=3)
    last = Flaky("third")
    call = flaky([Flaky("first"), Flaky("second"), last])
    with pytest.raises(Flaky) as raised:
        retry.run(call, Flaky)
    assert raised.value is last and call.calls == 3 and len(sleeps) == 2


def test_other_errors_and_refused_ones_are_raised_at_once():
    retry, sleeps = policy()
    call = flaky([Fatal()])
    with pytest.raises(Fatal):
        retry.run(call, Flaky)
    call = flaky([Flaky("no")])
    with pytest.raises(Flaky):
        retry.run(call, Flaky, retryable=lambda error: str(error) != "no")
    assert call.calls == 1 and sleeps == []


def test_without_jitter_the_waits_double_up_to_the_cap():
    retry, sleeps = policy(attempts=6, jitter=False)
    retry.run(flaky([Flaky()] * 5), Flaky)
    assert sleeps == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_retry_after_is_a_floor_within_the_cap():
    retry, sleeps = policy()
    retry.run(flaky([Flaky(retry_after=2.5), Flaky(retry_after=60)]), Flaky)
    assert sleeps[0] >= 2.5 and sleeps[1] == 3.0


def test_before_retry_runs_after_the_wait_and_may_stop():
    retry, sleeps = policy()
    seen = []
    call = flaky([Flaky("a"), Flaky("b")])
    assert retry.run(call, Flaky, before_retry=lambda error: seen.append((str(error), len(sleeps)))) == "done"
    assert seen == [("a", 1), ("b", 2)]

    def stop(error):
        raise Fatal(str(error))

    with pytest.raises(Fatal, match="c"):
        retry.run(flaky([Flaky("c")]), Flaky, before_retry=stop)


def test_no_retry_is_one_attempt():
    call = flaky([Flaky()])
    with pytest.raises(Flaky):
        NO_RETRY.run(call, Flaky)
    assert call.calls == 1
    with pytest.raises(ValueError, match="attempts"):
        Retry(attempts=0)
