# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Kubernetes times: metav1.Time and metav1.MicroTime, read and written one way everywhere."""

from __future__ import annotations

import datetime
import re
from typing import Optional

# RFC 3339 as the API server writes it (Z or an offset, 0 to 9 fractional digits). datetime.fromisoformat
# accepts only 3 or 6 digits before Python 3.11, and the floor here is 3.9.
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def parse_time(value) -> Optional[datetime.datetime]:
    """An aware datetime from an RFC 3339 string; None when absent or not a time."""
    if not isinstance(value, str):
        return None
    match = _RFC3339.match(value.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zulu, sign, off_hours, off_minutes = match.groups()
    try:
        moment = datetime.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                                   int((fraction or "0").ljust(6, "0")[:6]), tzinfo=datetime.timezone.utc)
    except ValueError:  # 2026-02-30 and the like
        return None
    if not zulu:
        offset = datetime.timedelta(hours=int(off_hours), minutes=int(off_minutes))
        moment -= offset if sign == "+" else -offset
    return moment


def micro_time(moment: datetime.datetime) -> str:
    """metav1.MicroTime, as Lease times are written."""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc3339(moment: datetime.datetime) -> str:
    """metav1.Time (whole seconds), as condition and Event times are written."""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
