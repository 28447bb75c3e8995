# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Template roles: find one for a spec.templateID, read its catalogue entry, validate its parameters.

A template is a role with C(meta/cloudkit.yaml) saying C(template_type: compute_instance); its parameters are the
options of its C(meta/argument_specs.yml) entry point C(create) (else C(main)). Its id is
C(<namespace>.<collection>.<role>). Only templates of the configured template collections, or ids on an explicit
allow-list, can be selected; any other role is refused before anything runs.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Optional
from collections.abc import Iterable

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.yaml import HAS_YAML, yaml_load

from ansible_collections.cloudkit.provisioning.plugins.module_utils.computeinstance import (
    ParameterError,
    seed_parameters,
)

BUILTIN_TEMPLATE = "cloudkit.provisioning.ocp_virt_vm"
# The ids instances were created with before templates were roles select the built-in template.
TEMPLATE_ALIASES = {
    "cloudkit.templates.ocp_virt_vm": BUILTIN_TEMPLATE,
    "osac.templates.ocp_virt_vm": BUILTIN_TEMPLATE,
}
DEFAULT_TEMPLATE_COLLECTIONS = ("cloudkit.provisioning",)
# The options of modules that select templates (doc fragment cloudkit.provisioning.templates).
TEMPLATE_ARGUMENT_SPEC = {
    "template_collections": {"type": "list", "elements": "str", "default": list(DEFAULT_TEMPLATE_COLLECTIONS)},
    "allowed_templates": {"type": "list", "elements": "str", "default": []},
    "collection_paths": {"type": "list", "elements": "path"},
}
TEMPLATE_TYPE = "compute_instance"
METADATA_FILE = "cloudkit.yaml"
ARGUMENT_SPEC_FILES = ("argument_specs.yml", "argument_specs.yaml")
ENTRY_POINTS = ("create", "main")
# Parameters become role variables: these prefixes belong to Ansible and to the jobs, never to a template.
RESERVED_PREFIXES = ("ansible_", "compute_instance_")

_ID_RE = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")
# How ArgumentSpecValidator's messages name the option: "argument 'cores' is of type ...",
# "value of flavor must be ...".
_ARGUMENT_RE = re.compile(r"argument '([^']+)'|value of ([A-Za-z_][A-Za-z0-9_]*) must")

PROTOBUF = "type.googleapis.com/google.protobuf."
# Argument spec type -> the protobuf wrapper the fulfillment service takes for it.
PARAMETER_TYPES = {
    "str": "StringValue",
    "path": "StringValue",
    "raw": "Value",
    "jsonarg": "StringValue",
    "json": "StringValue",
    "int": "Int64Value",
    "bool": "BoolValue",
    "float": "DoubleValue",
    "bytes": "BytesValue",
    "bits": "BytesValue",
    "list": "Value",
    "dict": "Value",
}


class TemplateError(ValueError):
    """A template role that cannot be used; the message says which and why."""


class Template:
    """One template role: where it is, its catalogue entry and its parameters."""

    def __init__(self, template_id: str, path: str, metadata: dict, entry_point: str, options: dict):
        self.id = template_id
        self.path = path
        self.metadata = metadata
        self.entry_point = entry_point
        self.options = options

    @property
    def title(self) -> str:
        return str(self.metadata.get("title") or self.id)

    @property
    def description(self) -> str:
        return str(self.metadata.get("description") or "")

    @property
    def template_type(self) -> str:
        return str(self.metadata.get("template_type") or "")

    def parameter_schema(self) -> list:
        """The options as the catalogue lists them, sorted by name."""
        schema = []
        # A title is the option's short_description (upstream's templates),
        # else meta/cloudkit.yaml parameters.<name>.title
        # (ansible-lint's schema allows no per-option short_description), else the name.
        titles = self.metadata.get("parameters") if isinstance(self.metadata.get("parameters"), dict) else {}
        for name in sorted(self.options):
            option = self.options[name] or {}
            description = option.get("description") or ""
            listed = titles.get(name) if isinstance(titles.get(name), dict) else {}
            entry = {
                "name": name,
                "title": str(option.get("short_description") or listed.get("title") or name),
                "description": " ".join(description) if isinstance(description, list) else str(description),
                "required": bool(option.get("required", False)),
                "type": option.get("type") or "str",
                "default": option.get("default"),
            }
            if option.get("choices") is not None:
                entry["choices"] = list(option["choices"])
            if option.get("elements") is not None:
                entry["elements"] = option["elements"]
            schema.append(entry)
        return schema

    def as_dict(self) -> dict:
        """The catalogue entry (template_info's RV)."""
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "type": self.template_type,
            "path": self.path,
            "entry_point": self.entry_point,
            "parameters": self.parameter_schema(),
        }


def _read_yaml(path: str) -> Any:
    if not HAS_YAML:
        raise TemplateError(f"PyYAML is required to read {path}")
    with open(path, encoding="utf-8") as stream:
        return yaml_load(stream)


def canonical_id(template_id: str) -> str:
    """The template id an alias stands for; other ids unchanged."""
    return TEMPLATE_ALIASES.get(template_id, template_id)


def role_path(template_id: str, collection_paths: Iterable[str]) -> Optional[str]:
    """Directory of role <ns>.<coll>.<role> on the collection search paths (each a dir holding ansible_collections)."""
    namespace, collection, role = template_id.split(".")
    for base in collection_paths:
        base = os.path.expanduser(str(base))
        if os.path.basename(os.path.normpath(base)) != "ansible_collections":
            base = os.path.join(base, "ansible_collections")
        candidate = os.path.join(base, namespace, collection, "roles", role)
        if os.path.isdir(candidate):
            return candidate
    return None


def load_template(template_id: str, collection_paths: Iterable[str]) -> Template:
    """The template role of that id; TemplateError when it is not a compute_instance template role."""
    if not isinstance(template_id, str) or not _ID_RE.fullmatch(template_id):
        raise TemplateError(f"{template_id!r} is not a role id of the form <namespace>.<collection>.<role>")
    path = role_path(template_id, collection_paths)
    if path is None:
        raise TemplateError(f"no role {template_id} on the collection paths")
    metadata_path = os.path.join(path, "meta", METADATA_FILE)
    if not os.path.isfile(metadata_path):
        raise TemplateError(f"role {template_id} is not a template (it has no meta/{METADATA_FILE})")
    metadata = _read_yaml(metadata_path)
    if not isinstance(metadata, dict) or metadata.get("template_type") != TEMPLATE_TYPE:
        raise TemplateError(
            "role {} is not a {} template (meta/{} template_type is {!r})".format(
                template_id,
                TEMPLATE_TYPE,
                METADATA_FILE,
                metadata.get("template_type") if isinstance(metadata, dict) else None,
            )
        )
    specs: dict = {}
    for name in ARGUMENT_SPEC_FILES:
        spec_path = os.path.join(path, "meta", name)
        if os.path.isfile(spec_path):
            specs = (_read_yaml(spec_path) or {}).get("argument_specs") or {}
            break
    entry_point = next((name for name in ENTRY_POINTS if name in specs), None)
    options = ((specs.get(entry_point) or {}).get("options") or {}) if entry_point else {}
    reserved = sorted(name for name in options if name.startswith(RESERVED_PREFIXES))
    if reserved:
        raise TemplateError(
            "template {} declares reserved parameter names {} (prefixes {} belong to the jobs)".format(
                template_id, ", ".join(reserved), ", ".join(RESERVED_PREFIXES)
            )
        )
    return Template(template_id, path, metadata, entry_point or "create", options)


def allowed(template_id: str, template_collections: Iterable[str], allowed_templates: Iterable[str]) -> bool:
    """Whether a canonical id may be selected: its collection is a template collection, or it is on the allow-list."""
    collection = ".".join(template_id.split(".")[:2])
    extra = set(canonical_id(entry) for entry in allowed_templates)
    return collection in set(template_collections) or template_id in extra


def select_template(
    template_id: Any,
    collection_paths: Iterable[str],
    template_collections: Iterable[str] = DEFAULT_TEMPLATE_COLLECTIONS,
    allowed_templates: Iterable[str] = (),
) -> Template:
    """The template a spec.templateID selects; ParameterError naming spec.templateID otherwise (nothing may run)."""
    if not isinstance(template_id, str) or not template_id:
        raise ParameterError([f"spec.templateID must name a template, got {template_id!r}"])
    resolved = canonical_id(template_id)
    template_collections, allowed_templates = list(template_collections), list(allowed_templates)
    if not _ID_RE.fullmatch(resolved) or not allowed(resolved, template_collections, allowed_templates):
        raise ParameterError(
            [
                "spec.templateID {!r} is not an allowed template; allowed: templates of the collections {}{}".format(
                    template_id,
                    ", ".join(template_collections) or "(none)",
                    (" and " + ", ".join(allowed_templates)) if allowed_templates else "",
                )
            ]
        )
    try:
        return load_template(resolved, collection_paths)
    except TemplateError as error:
        raise ParameterError([f"spec.templateID {template_id!r}: {error}"]) from error


def validate_parameters(template: Template, spec: Any) -> dict:
    """spec.templateParameters checked by the template's argument specs, defaults filled in.

    Raises ParameterError with every problem, each naming its field (spec.templateParameters.<name>).
    Empty values count as unset, as the seed-era templateParameters used them.
    """
    raw = seed_parameters(spec if isinstance(spec, dict) else {})
    given = dict((key, value) for key, value in raw.items() if value not in (None, ""))
    problems = []
    unknown = sorted(set(given) - set(template.options))
    if unknown:
        problems.append(
            "spec.templateParameters has unknown parameter(s) {}; {} takes: {}".format(
                ", ".join(unknown), template.id, ", ".join(sorted(template.options)) or "(none)"
            )
        )
        for key in unknown:
            given.pop(key)
    result = ArgumentSpecValidator(template.options).validate(given)
    for error in result.errors:
        message = str(getattr(error, "msg", error))
        if type(error).__name__ == "RequiredError":
            names = message.split(":", 1)[-1]
            problems.extend(
                f"spec.templateParameters.{name.strip()} is required by template {template.id}"
                for name in names.split(",")
                if name.strip()
            )
            continue
        match = _ARGUMENT_RE.search(message)
        field = (
            "spec.templateParameters.%s" % (match.group(1) or match.group(2)) if match else "spec.templateParameters"
        )
        problems.append(f"{field}: {message}")
    if problems:
        raise ParameterError(problems)
    return dict((key, result.validated_parameters.get(key)) for key in template.options)


def catalogue(
    collection_paths: Iterable[str],
    template_collections: Iterable[str] = DEFAULT_TEMPLATE_COLLECTIONS,
    allowed_templates: Iterable[str] = (),
) -> tuple:
    """(templates, problems): every compute_instance template that can be selected, sorted by id.

    Roles of the template collections that are not templates are skipped; an allow-listed id that is not a template,
    or a template that cannot be read, is a problem.
    """
    paths = list(collection_paths)
    ids = set()
    for collection in template_collections:
        namespace, _sep, name = collection.partition(".")
        for base in paths:
            base = os.path.expanduser(str(base))
            if os.path.basename(os.path.normpath(base)) != "ansible_collections":
                base = os.path.join(base, "ansible_collections")
            roles = os.path.join(base, namespace, name, "roles")
            if os.path.isdir(roles):
                ids.update(
                    f"{collection}.{role}"
                    for role in os.listdir(roles)
                    if os.path.isfile(os.path.join(roles, role, "meta", METADATA_FILE))
                )
                break
    listed = set(canonical_id(entry) for entry in allowed_templates)
    templates, problems = [], []
    for template_id in sorted(ids | listed):
        try:
            template = load_template(template_id, paths)
        except TemplateError as error:
            if template_id in listed:
                problems.append(str(error))
            continue
        templates.append(template)
    return templates, problems


def type_url(argument_type: Any) -> str:
    """The protobuf type URL of an argument spec type (Value for anything structured or unknown)."""
    return PROTOBUF + PARAMETER_TYPES.get(argument_type if isinstance(argument_type, str) else "raw", "Value")


def published(template: Template) -> dict:
    """The template as the fulfillment service's compute_instance_templates endpoint takes it."""
    parameters = []
    for option in template.parameter_schema():
        url = type_url(option["type"])
        entry = {
            "name": option["name"],
            "title": option["title"],
            "description": option["description"],
            "required": option["required"],
            "type": url,
        }
        if option["default"] is not None:
            entry["default"] = {"@type": url, "value": option["default"]}
        parameters.append(entry)
    return {"id": template.id, "title": template.title, "description": template.description, "parameters": parameters}


def stable(document: Any) -> str:
    """A canonical text of a JSON document, to compare what is published with what would be."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def assess_template(
    spec: Any, collection_paths: Iterable[str], template_collections: Iterable[str], allowed_templates: Iterable[str]
) -> dict:
    """The template a spec selects and its validated parameters, as facts; nothing raised.

    Returns template (catalogue entry or None), template_allowed, template_parameters (None when invalid),
    builtin (whether it is the built-in template, whose parameters computeinstance_vm checks further) and problems.
    """
    spec = spec if isinstance(spec, dict) else {}
    facts = {"template": None, "template_allowed": False, "template_parameters": None, "builtin": False, "problems": []}
    try:
        template = select_template(spec.get("templateID"), collection_paths, template_collections, allowed_templates)
    except ParameterError as error:
        facts["problems"].extend(error.problems)
        return facts
    facts.update(template=template.as_dict(), template_allowed=True, builtin=template.id == BUILTIN_TEMPLATE)
    try:
        facts["template_parameters"] = validate_parameters(template, spec)
    except ParameterError as error:
        facts["problems"].extend(error.problems)
    return facts
