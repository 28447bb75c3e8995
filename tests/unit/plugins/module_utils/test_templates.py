"""Unit tests for plugins/module_utils/templates.py: finding template roles, selecting, validating, publishing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ansible_collections.cloudkit.provisioning.plugins.module_utils.computeinstance import ParameterError
from ansible_collections.cloudkit.provisioning.plugins.module_utils.templates import (
    BUILTIN_TEMPLATE,
    assess_template,
    catalogue,
    published,
    select_template,
    validate_parameters,
)

# This collection's own directory: <root>/ansible_collections/cloudkit/provisioning (the tests run a copy of it).
COLLECTION = Path(__file__).resolve().parents[4]
ROOT = str(COLLECTION.parents[2])

SPECS = """argument_specs:
  create:
    options:
      cores: {type: int, default: 1, short_description: Cores, description: [How many, cores.]}
      flavor: {type: str, required: true, choices: [small, large]}
      tags: {type: list, elements: str}
"""


def _role(root, fqcn, metadata="template_type: compute_instance\ntitle: T\nparameters: {tags: {title: Tags}}\n", specs=SPECS):
    namespace, collection, role = fqcn.split(".")
    meta = root / "ansible_collections" / namespace / collection / "roles" / role / "meta"
    meta.mkdir(parents=True)
    if metadata is not None:
        (meta / "cloudkit.yaml").write_text(metadata)
    (meta / "argument_specs.yml").write_text(specs)
    return meta.parent


@pytest.fixture
def paths(tmp_path):
    _role(tmp_path, "acme.templates.small_vm")
    _role(tmp_path, "acme.templates.helper", metadata=None)
    _role(tmp_path, "acme.templates.cluster", metadata="template_type: cluster\n")
    _role(tmp_path, "acme.other.big_vm")
    return [str(tmp_path), ROOT]


def test_aliases_select_the_builtin_role_of_this_collection(paths):
    for template_id in ("cloudkit.templates.ocp_virt_vm", "osac.templates.ocp_virt_vm", BUILTIN_TEMPLATE):
        template = select_template(template_id, paths)
        assert template.id == BUILTIN_TEMPLATE
        assert Path(template.path) == COLLECTION / "roles" / "ocp_virt_vm"
        assert template.template_type == "compute_instance" and template.entry_point == "create"


@pytest.mark.parametrize("template_id, reason", [
    ("cloudkit.provisioning.eda_config", "not a template"),
    ("cloudkit.provisioning.compute_instance", "not a template"),
    ("acme.templates.small_vm", "not an allowed template"),
    ("acme.templates.helper", "not an allowed template"),
    ("ansible.builtin.debug", "not an allowed template"),
    ("../../etc", "not an allowed template"),
    ("", "must name a template"),
    (None, "must name a template"),
])
def test_anything_but_a_template_of_a_configured_collection_is_refused_naming_the_field(paths, template_id, reason):
    with pytest.raises(ParameterError) as error:
        select_template(template_id, paths)
    assert str(error.value).startswith("spec.templateID") and reason in str(error.value)


def test_template_collections_and_allow_list(paths):
    assert select_template("acme.templates.small_vm", paths, ["acme.templates"]).id == "acme.templates.small_vm"
    assert select_template("acme.other.big_vm", paths, [], ["acme.other.big_vm"]).id == "acme.other.big_vm"
    for template_id, collections in (("acme.templates.helper", ["acme.templates"]), ("acme.templates.cluster", ["acme.templates"])):
        with pytest.raises(ParameterError, match="is not a"):
            select_template(template_id, paths, collections)
    with pytest.raises(ParameterError, match="not an allowed template"):
        select_template("cloudkit.templates.ocp_virt_vm", paths, [])


def test_parameters_are_validated_by_the_argument_specs_naming_each_field(paths):
    template = select_template("acme.templates.small_vm", paths, ["acme.templates"])
    assert validate_parameters(template, {"templateParameters": json.dumps({"flavor": "small", "cores": "3"})}) == {
        "cores": 3, "flavor": "small", "tags": None}
    assert validate_parameters(template, {"templateParameters": {"flavor": "large"}})["cores"] == 1
    with pytest.raises(ParameterError) as error:
        validate_parameters(template, {"templateParameters": json.dumps({"cores": "many", "flavor": "huge", "gpu": 1})})
    problems = error.value.problems
    assert any(p.startswith("spec.templateParameters has unknown parameter(s) gpu") for p in problems)
    assert any(p.startswith("spec.templateParameters.cores:") for p in problems)
    assert any(p.startswith("spec.templateParameters.flavor:") for p in problems)
    with pytest.raises(ParameterError, match="spec.templateParameters.flavor is required"):
        validate_parameters(template, {})
    with pytest.raises(ParameterError, match="not valid JSON"):
        validate_parameters(template, {"templateParameters": "{"})


def test_reserved_parameter_names_make_a_role_unusable(tmp_path):
    _role(tmp_path, "acme.bad.vm", specs="argument_specs:\n  main:\n    options:\n      ansible_connection: {type: str}\n")
    with pytest.raises(ParameterError, match="reserved parameter names ansible_connection"):
        select_template("acme.bad.vm", [str(tmp_path)], ["acme.bad"])


def test_assess_never_raises_and_marks_the_builtin(paths):
    facts = assess_template({"templateID": "cloudkit.templates.ocp_virt_vm", "templateParameters": '{"cpu_cores": 4}'}, paths,
                            ["cloudkit.provisioning"], [])
    assert facts["builtin"] and facts["template_allowed"] and facts["template_parameters"]["cpu_cores"] == 4
    assert facts["template_parameters"]["memory"] == "2Gi" and facts["problems"] == []
    facts = assess_template({"templateID": "cloudkit.provisioning.eda_config"}, paths, ["cloudkit.provisioning"], [])
    assert not facts["template_allowed"] and facts["template"] is None and "spec.templateID" in facts["problems"][0]


def test_catalogue_lists_templates_only(paths):
    templates, problems = catalogue(paths, ["cloudkit.provisioning", "acme.templates"], ["acme.other.big_vm", "acme.templates.helper"])
    assert [t.id for t in templates] == ["acme.other.big_vm", "acme.templates.small_vm", BUILTIN_TEMPLATE]
    assert len(problems) == 1 and "acme.templates.helper is not a template" in problems[0]


def test_published_shape_uses_protobuf_type_urls(paths):
    template = select_template("acme.templates.small_vm", paths, ["acme.templates"])
    document = published(template)
    assert document["id"] == "acme.templates.small_vm" and document["title"] == "T" and document["description"] == ""
    by_name = dict((p["name"], p) for p in document["parameters"])
    assert by_name["cores"] == {"name": "cores", "title": "Cores", "description": "How many cores.", "required": False,
                                "type": "type.googleapis.com/google.protobuf.Int64Value",
                                "default": {"@type": "type.googleapis.com/google.protobuf.Int64Value", "value": 1}}
    assert by_name["flavor"]["required"] and "default" not in by_name["flavor"] and by_name["flavor"]["title"] == "flavor"
    assert by_name["tags"]["type"] == "type.googleapis.com/google.protobuf.Value" and by_name["tags"]["title"] == "Tags"
    builtin = dict((p["name"], p["type"].rsplit(".", 1)[1]) for p in published(select_template(BUILTIN_TEMPLATE, paths))["parameters"])
    assert builtin == {"cloud_init": "StringValue", "cpu_cores": "Int64Value", "disk_size": "StringValue", "exposed_ports": "StringValue",
                       "image": "StringValue", "memory": "StringValue", "ssh_public_key": "StringValue"}
