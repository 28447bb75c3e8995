"""CRD openAPIV3Schema handling: pruning, defaulting and validation with kube-apiserver style errors."""
from __future__ import annotations

import copy
import json
from datetime import datetime

import jsonschema

_ROOT_KEEP = ('apiVersion', 'kind', 'metadata')


def _is_datetime(value) -> bool:
    if not isinstance(value, str):
        return True
    try:
        datetime.fromisoformat(value.replace('z', 'Z'))
    except ValueError:
        return False
    return 'T' in value or 't' in value


_FORMATS = jsonschema.FormatChecker(formats=())
_FORMATS.checks('date-time')(_is_datetime)


def _to_jsonschema(node):
    """Translate the Kubernetes dialect (nullable, int-or-string) into plain JSON schema."""
    if isinstance(node, list):
        return [_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, val in node.items():
        if key in ('properties', 'patternProperties', 'definitions'):
            out[key] = {k: _to_jsonschema(v) for k, v in val.items()}
        elif key in ('items', 'additionalProperties', 'not', 'allOf', 'anyOf', 'oneOf'):
            out[key] = _to_jsonschema(val)
        elif key in ('default', 'example', 'enum'):
            out[key] = val
        elif not key.startswith('x-kubernetes-') and key != 'nullable':
            out[key] = val
    if node.get('x-kubernetes-int-or-string'):
        out.pop('type', None)
        out['anyOf'] = out.get('anyOf', []) + [{'type': 'integer'}, {'type': 'string'}]
    if node.get('nullable'):
        if 'type' in out:
            out['type'] = [out['type'], 'null']
        if 'enum' in out:
            out['enum'] = list(out['enum']) + [None]
    return out


class CRDSchema:
    """One version's openAPIV3Schema."""

    def __init__(self, schema: dict | None):
        self.raw = schema or {'type': 'object', 'x-kubernetes-preserve-unknown-fields': True}
        js = _to_jsonschema(self.raw)
        # metadata is validated by the server itself, never by the CRD schema.
        js.get('properties', {}).pop('metadata', None)
        if 'required' in js:
            js['required'] = [r for r in js['required'] if r not in _ROOT_KEEP]
        self.validator = jsonschema.Draft4Validator(js, format_checker=_FORMATS)

    def prune_and_default(self, obj: dict) -> dict:
        """Drop unknown fields (unless preserved) and fill defaults, like the real server does before validation."""
        out = {k: obj[k] for k in _ROOT_KEEP if k in obj}
        rest = {k: v for k, v in obj.items() if k not in _ROOT_KEEP}
        pruned = _prune(rest, self.raw, root=True)
        out.update(pruned if isinstance(pruned, dict) else {})
        return out

    def validate(self, obj: dict, only_status: bool = False, skip_status: bool = False) -> list[dict]:
        """Status causes for every schema violation; ``only_status``/``skip_status`` select the subresource's share."""
        doc = {k: v for k, v in obj.items() if k != 'metadata'}
        causes = []
        for err in _first_string_errors(self.validator.iter_errors(doc)):
            for cause in _causes(err):
                top = cause['field'].split('.', 1)[0].split('[', 1)[0]
                if only_status and top != 'status':
                    continue
                if skip_status and top == 'status':
                    continue
                causes.append(cause)
        causes.sort(key=lambda c: c['field'])
        return causes


# kube-openapi's stringValidator stops at the first of these that fails, in this order (k8s.io/kube-openapi
# pkg/validation/validate/validator.go): an empty reason is "at least 1 chars long", not also a pattern mismatch.
_STRING_CHECKS = ('maxLength', 'minLength', 'pattern')


def _first_string_errors(errors):
    errors = list(errors)
    first = {}
    for err in errors:
        if err.validator in _STRING_CHECKS:
            key = tuple(err.absolute_path)
            if key not in first or _STRING_CHECKS.index(err.validator) < _STRING_CHECKS.index(first[key].validator):
                first[key] = err
    return [err for err in errors if err.validator not in _STRING_CHECKS or first[tuple(err.absolute_path)] is err]


def _prune(value, schema: dict, root: bool = False):
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict):
        props = schema.get('properties') or {}
        addl = schema.get('additionalProperties')
        preserve = schema.get('x-kubernetes-preserve-unknown-fields', False)
        out = {}
        for key, val in value.items():
            if key in props:
                out[key] = _prune(val, props[key])
            elif isinstance(addl, dict):
                out[key] = _prune(val, addl)
            elif preserve or addl is True or (not props and not root and schema.get('type') != 'object'):
                out[key] = val
        for key, sub in props.items():
            if key not in out and isinstance(sub, dict) and 'default' in sub:
                out[key] = copy.deepcopy(sub['default'])
        return out
    if isinstance(value, list) and isinstance(schema.get('items'), dict):
        return [_prune(v, schema['items']) for v in value]
    return value


def _field(path) -> str:
    out = ''
    for part in path:
        if isinstance(part, int):
            out += f'[{part}]'
        else:
            out += ('.' if out else '') + str(part)
    return out


def _go_value(value) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if value is None:
        return 'null'
    if isinstance(value, (int, float)):
        return str(value)
    return '"object"' if isinstance(value, dict) else '"array"'


_JSON_TYPES = {dict: 'object', list: 'array', str: 'string', bool: 'boolean', int: 'integer', float: 'number', type(None): 'null'}


def _causes(err) -> list[dict]:
    path = list(err.absolute_path)
    field = _field(path)
    val = err.instance
    kind = err.validator
    if kind == 'required':
        missing = [r for r in err.validator_value if not (isinstance(val, dict) and r in val)]
        return [{'reason': 'FieldValueRequired', 'message': 'Required value', 'field': _field(path + [m])} for m in missing]
    if kind == 'enum':
        allowed = ', '.join(_go_value(v) for v in err.validator_value if v is not None)
        return [{'reason': 'FieldValueNotSupported', 'message': f'Unsupported value: {_go_value(val)}: supported values: {allowed}', 'field': field}]
    if kind == 'type':
        want = err.validator_value if isinstance(err.validator_value, str) else ' or '.join(t for t in err.validator_value if t != 'null')
        got = _JSON_TYPES.get(type(val), 'unknown')
        return [{'reason': 'FieldValueTypeInvalid', 'message': f'Invalid value: "{got}": {field} in body must be of type {want}: "{got}"', 'field': field}]
    messages = {
        'pattern': lambda: f"{field} in body should match '{err.validator_value}'",
        'format': lambda: f'{field} in body must be of type {err.validator_value}: {_go_value(val)}',
        'minimum': lambda: f'{field} in body should be greater than or equal to {err.validator_value}',
        'maximum': lambda: f'{field} in body should be less than or equal to {err.validator_value}',
        'minLength': lambda: f'{field} in body should be at least {err.validator_value} chars long',
        'maxLength': lambda: f'{field} in body may not be longer than {err.validator_value}',
        'minItems': lambda: f'{field} in body should have at least {err.validator_value} items',
        'maxItems': lambda: f'{field} in body should have at most {err.validator_value} items',
    }
    text = messages[kind]() if kind in messages else f'{field} in body {err.message}'
    if kind in ('maxLength', 'maxItems'):
        return [{'reason': 'FieldValueTooLong', 'message': f'Too long: {text}', 'field': field}]
    return [{'reason': 'FieldValueInvalid', 'message': f'Invalid value: {_go_value(val)}: {text}', 'field': field}]
