"""Object-metadata validation worded as kube-apiserver words it (k8s.io/apimachinery/pkg/util/validation and
pkg/api/validation): names, label and annotation keys and values, and the size limits of annotations, Secrets and ConfigMaps.

Each ``is_*`` function returns the list of messages Go's function of the same name returns (empty when valid).
"""
from __future__ import annotations

import re

DNS1123_LABEL_FMT = '[a-z0-9]([-a-z0-9]*[a-z0-9])?'
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + '(\\.' + DNS1123_LABEL_FMT + ')*'
DNS1035_LABEL_FMT = '[a-z]([-a-z0-9]*[a-z0-9])?'
QUALIFIED_NAME_FMT = '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]'
LABEL_VALUE_FMT = '(' + QUALIFIED_NAME_FMT + ')?'
QUALIFIED_NAME_MSG = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
TOTAL_ANNOTATION_SIZE = 256 * 1024
MAX_SECRET_SIZE = 1024 * 1024           # Secret data, ConfigMap data + binaryData
MAX_REQUEST_BODY = 3 * 1024 * 1024      # kube-apiserver's request body limit (413 beyond)
MAX_ETCD_REQUEST = 1536 * 1024          # etcd's --max-request-bytes default: a larger object fails with 500
GENERATED_SUFFIX = 5
MAX_GENERATED_PREFIX = 63 - GENERATED_SUFFIX


def _full(fmt: str) -> re.Pattern:
    return re.compile('^' + fmt + '$')


_DNS1123_LABEL = _full(DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN = _full(DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL = _full(DNS1035_LABEL_FMT)
_QUALIFIED_NAME = _full(QUALIFIED_NAME_FMT)
_LABEL_VALUE = _full(LABEL_VALUE_FMT)


def max_len_error(length: int) -> str:
    """Go's MaxLenError."""
    return f'must be no more than {length} characters'


def regex_error(message: str, fmt: str, *examples: str) -> str:
    """Go's RegexError."""
    shown = ',  or '.join(f"'{e}'" for e in examples)
    return f"{message} (e.g. {shown}, regex used for validation is '{fmt}')" if examples else \
        f"{message} (regex used for validation is '{fmt}')"


def is_dns1123_label(value: str) -> list[str]:
    """IsDNS1123Label (a valid subdomain that is not a label must contain dots)."""
    errs = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _DNS1123_LABEL.match(value):
        if _DNS1123_SUBDOMAIN.match(value):
            errs.append('must not contain dots')
        else:
            errs.append(regex_error('a lowercase RFC 1123 label must consist of lower case alphanumeric characters or \'-\', and must start '
                                    'and end with an alphanumeric character', DNS1123_LABEL_FMT, 'my-name', '123-abc'))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    """IsDNS1123Subdomain."""
    errs = []
    if len(value) > 253:
        errs.append(max_len_error(253))
    if not _DNS1123_SUBDOMAIN.match(value):
        errs.append(regex_error("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
                                'start and end with an alphanumeric character', DNS1123_SUBDOMAIN_FMT, 'example.com'))
    return errs


def is_dns1035_label(value: str) -> list[str]:
    """IsDNS1035Label (Service names)."""
    errs = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _DNS1035_LABEL.match(value):
        errs.append(regex_error("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
                                'character, and end with an alphanumeric character', DNS1035_LABEL_FMT, 'my-name', 'abc-123'))
    return errs


def is_qualified_name(value: str) -> list[str]:
    """IsQualifiedName: label keys and annotation keys (an optional DNS subdomain prefix and '/')."""
    parts = value.split('/')
    if len(parts) == 1:
        name = parts[0]
        errs = []
    elif len(parts) == 2:
        prefix, name = parts
        errs = ['prefix part must be non-empty'] if not prefix else [f'prefix part {m}' for m in is_dns1123_subdomain(prefix)]
    else:
        return ['a qualified name ' + regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, 'MyName', 'my.name', '123-abc')
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append('name part must be non-empty')
    elif len(name) > 63:
        errs.append('name part ' + max_len_error(63))
    if name and not _QUALIFIED_NAME.match(name):
        errs.append('name part ' + regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, 'MyName', 'my.name', '123-abc'))
    return errs


def is_valid_label_value(value: str) -> list[str]:
    """IsValidLabelValue."""
    errs = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _LABEL_VALUE.match(value):
        errs.append(regex_error("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
                                'start and end with an alphanumeric character', LABEL_VALUE_FMT, 'MyValue', 'my_value', '12345'))
    return errs


def _invalid(field: str, value: str, message: str) -> dict:
    return {'reason': 'FieldValueInvalid', 'message': f'Invalid value: "{value}": {message}', 'field': field}


def name_causes(validator, name: str, generate_name: str | None = None) -> list[dict]:
    """ValidateObjectMeta's name checks: generateName (a prefix: a trailing '-' is fine) and the name."""
    causes = []
    if generate_name:
        masked = generate_name[:-1] + 'a' if generate_name.endswith('-') else generate_name
        causes += [_invalid('metadata.generateName', generate_name, m) for m in validator(masked)]
    causes += [_invalid('metadata.name', name, m) for m in validator(name)]
    return causes


def label_causes(labels: dict) -> list[dict]:
    """ValidateLabels."""
    causes = []
    for key, value in labels.items():
        causes += [_invalid('metadata.labels', key, m) for m in is_qualified_name(key)]
        causes += [_invalid('metadata.labels', value, m) for m in is_valid_label_value(value)]
    return causes


def annotation_causes(annotations: dict) -> list[dict]:
    """ValidateAnnotations: qualified-name keys, 256 KiB in all."""
    causes = []
    total = 0
    for key, value in annotations.items():
        causes += [_invalid('metadata.annotations', key, m) for m in is_qualified_name(key.lower())]
        total += len(key.encode()) + len(value.encode())
    if total > TOTAL_ANNOTATION_SIZE:
        causes.append({'reason': 'FieldValueTooLong', 'message': f'Too long: may not be more than {TOTAL_ANNOTATION_SIZE} bytes',
                       'field': 'metadata.annotations'})
    return causes


def too_long(field: str, limit: int) -> dict:
    """field.TooLong's cause for a byte limit."""
    return {'reason': 'FieldValueTooLong', 'message': f'Too long: may not be more than {limit} bytes', 'field': field}
