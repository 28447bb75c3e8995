# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Kubernetes' limits on what this collection derives from an instance, checked before the first write.

kube-apiserver refuses (422) a Service whose name is not a DNS-1035 label, an object name or label value over 63
characters, a Secret whose data exceeds 1 MiB, annotations over 256 KiB (k8s.io/apimachinery/pkg/util/validation,
apimachinery/pkg/api/validation/objectmeta.go, pkg/apis/core/validation). A job that met one of these halfway would
leave half an instance behind; checking them first fails it with nothing created, naming the field and the limit.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
import unicodedata
from typing import Optional

NAME_MAX = 63
SECRET_DATA_MAX = 1024 * 1024
ANNOTATIONS_MAX = 256 * 1024

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

# OpenSSH public key types, and the type string each key's own blob begins with.
SSH_KEY_TYPES = (
    "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
)
SSH_COMMENT_MAX = 256

# What the collection writes itself, cut to fit rather than refused: a condition's message (the CRD's metav1.Condition
# schema, maxLength 32768 characters) and an Event's message and reason (pkg/apis/core/validation/events.go:
# NoteLengthLimit 1024 and ReasonLengthLimit 128, counted in bytes, as Go's len() does).
CONDITION_MESSAGE_MAX = 32768
EVENT_NOTE_MAX_BYTES = 1024
EVENT_REASON_MAX_BYTES = 128
_ELLIPSIS = "\u2026"


def name_problems(value: str, what: str, field: str, dns1035: bool = False) -> list[str]:
    """Why `value` cannot name `what` (a DNS-1123 label, or a DNS-1035 label for a Service), as problems naming
    `field`."""
    problems = []
    kind = "DNS-1035 label (a Service name)" if dns1035 else "DNS-1123 label"
    if len(value) > NAME_MAX:
        problems.append(
            f"{field}: {what} would be {value!r}, {len(value)} characters; a {kind} has at most {NAME_MAX}"
        )
    if not (_DNS1035_LABEL if dns1035 else _DNS1123_LABEL).match(value):
        start = "start with a letter, " if dns1035 else ""
        problems.append(
            f"{field}: {what} would be {value!r}; a {kind} must {start}contain only lower-case letters, digits "
            "and '-', and end with a letter or digit"
        )
    return problems


def label_value_problems(value: str, what: str, field: str) -> list[str]:
    if len(value) > NAME_MAX or not _LABEL_VALUE.match(value):
        return [
            f"{field}: {what} would be {value!r}; a label value has at most {NAME_MAX} characters: letters, digits, "
            "'-', '_' and '.', beginning and ending with a letter or digit"
        ]
    return []


def derived_name_problems(instance_name: str, object_names: dict, extra_disks: int = 0) -> list[str]:
    """Every name and label value derived from an instance name that Kubernetes would refuse."""
    field = "metadata.name"
    problems = label_value_problems(instance_name, "the value of the instance label", field)
    problems += name_problems(instance_name, "the VirtualMachine's name", field)
    for key, what in (
        ("cloud_init_secret", "the cloud-init Secret's name"),
        ("ssh_key_secret", "the SSH key Secret's name"),
        ("root_disk", "the root disk DataVolume's name"),
    ):
        problems += name_problems(object_names[key], what, field)
    for index in range(extra_disks):
        problems += name_problems(
            f"{instance_name}-disk-{index + 1}", f"additional disk {index + 1}'s DataVolume name", field
        )
    problems += name_problems(object_names["service"], "the LoadBalancer Service's name", field, dns1035=True)
    return problems


def ssh_public_key_problems(value: str, field: str) -> list[str]:
    """Why `value` is not one OpenSSH public key line `<type> <base64 blob> [comment]`, checked strictly.

    The blob must decode and name the same type; the comment must be printable text on one line (no control or
    line-separator characters), so the key can never add a line, or a key, to a cloud-config document.
    """
    parts = value.strip().split(" ", 2)
    if len(parts) < 2:
        return [f"{field} must be an OpenSSH public key line (ssh-ed25519 AAAA... comment)"]
    key_type, blob = parts[0], parts[1]
    comment = parts[2] if len(parts) == 3 else ""
    if key_type not in SSH_KEY_TYPES:
        return ["{}: key type {!r} is not one of {}".format(field, key_type[:40], ", ".join(SSH_KEY_TYPES))]
    try:
        raw = base64.b64decode(blob.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return [f"{field}: the key body is not base64"]
    if (
        len(raw) < 4
        or struct.unpack(">I", raw[:4])[0] != len(key_type)
        or raw[4 : 4 + len(key_type)] != key_type.encode("ascii")
    ):
        return [f"{field}: the key body is not a {key_type} key"]
    problems = []
    if len(comment) > SSH_COMMENT_MAX:
        problems.append(f"{field}: the key comment has {len(comment)} characters, at most {SSH_COMMENT_MAX}")
    bad = sorted({f"U+{ord(char):04X}" for char in comment if not _printable(char)})
    if bad:
        problems.append(
            "{}: the key comment has characters that are not printable text on one line: {}".format(
                field, ", ".join(bad[:5])
            )
        )
    return problems


def _printable(char: str) -> bool:
    # Categories C* (control, format, surrogate, private use, unassigned) and Z[lp] (line and paragraph separators) are
    # out;
    # a plain space is the one separator allowed.
    category = unicodedata.category(char)
    return char == " " or not (category.startswith("C") or category in ("Zl", "Zp"))


def size_problem(text: Optional[str], field: str, limit: int, container: str) -> list[str]:
    """A problem when `text`, UTF-8 encoded, does not fit in `limit` bytes of `container`."""
    if not text:
        return []
    size = len(text.encode("utf-8"))
    if size > limit:
        return [f"{field} is {size} bytes; {container} holds at most {limit}"]
    return []


def shorten(text: str, limit: int, in_bytes: bool = False) -> str:
    """``text`` if it fits ``limit`` characters (or UTF-8 bytes), else cut at a character boundary to fit, ending in an
    ellipsis: a message the API server would refuse is never sent whole."""
    size = len(text.encode("utf-8")) if in_bytes else len(text)
    if size <= limit:
        return text
    room = limit - (len(_ELLIPSIS.encode("utf-8")) if in_bytes else 1)
    if in_bytes:
        return text.encode("utf-8")[:room].decode("utf-8", errors="ignore") + _ELLIPSIS
    return text[:room] + _ELLIPSIS
