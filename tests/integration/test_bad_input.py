"""Bad input, property-based: malformed envelopes, specs and template parameters never crash and never create anything.

In-process, hundreds of generated inputs go through what the modules run on their input
(envelope.identify, computeinstance.vm_parameters and check_template): each must be refused
with the module's typed error, and its message must name the field at fault. Through the entry
points the AAP job templates run (playbooks/create_compute_instance.yml and
delete_compute_instance.yml), a bounded, reproducible sample of the same inputs must fail the
job naming the field, without a Python traceback, without any object (VirtualMachine,
DataVolume, Secret, Service, Lease) left behind and without our finalizer, and an existing
instance whose spec is at fault must show phase Failed with the message.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ansible_collections.cloudkit.provisioning.plugins.module_utils.computeinstance import ParameterError, check_template, vm_parameters
from ansible_collections.cloudkit.provisioning.plugins.module_utils.envelope import EnvelopeError, identify
from tests.integration.conftest import GROUP, refused
from tests.integration.instances import envelope
from tests.reliability_report import check

OURS = GROUP + "/computeinstance-aap"
OPERATORS = GROUP + "/computeinstance"
RECONCILED = GROUP + "/reconciled-config-version"
ALLOWED = "cloudkit.templates.ocp_virt_vm"
SOURCES = {"eda": "ansible_eda.event.payload", "osac": "osac_job_vars.resource", "hand": "compute_instance"}
# What an envelope wraps, level by level: (shape, path of the keys above the object).
ENVELOPE_LEVELS = (("eda", ("ansible_eda",)), ("eda", ("ansible_eda", "event")), ("osac", ("osac_job_vars",)))

# Wide in-process runs; every run draws the same examples (derandomize), so CI is reproducible.
WIDE = settings(max_examples=1000, deadline=None, derandomize=True, database=None)
# Through a playbook each example costs seconds of CPU: a bounded sample, the same every run.
PLAYBOOK = settings(max_examples=10, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])

NAMED = "bad input names the field"
TYPED = "bad input raises only the module's typed error"
NOTHING = "nothing created on bad input"
NO_FINALIZER = "no finalizer added or removed on bad input"
UNTOUCHED = "instance untouched by a malformed envelope"
FAILED_PHASE = "invalid instance shows phase Failed naming the field"

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def is_dns_label(text):
    """Kubernetes' DNS-1123 label (RFC 1123), as the API server defines it."""
    return isinstance(text, str) and len(text) <= 63 and bool(_DNS_LABEL.fullmatch(text))


def is_dns_subdomain(text):
    """Kubernetes' DNS-1123 subdomain."""
    return isinstance(text, str) and 0 < len(text) <= 253 and all(_DNS_LABEL.fullmatch(part) for part in text.split("."))


def instance(name="vm1", namespace="tenants", uid="0b9e6c1e-0000-4000-8000-000000000001"):
    """A well-formed ComputeInstance as the operator sends it."""
    return {"apiVersion": GROUP + "/v1alpha1", "kind": "ComputeInstance",
            "metadata": {"name": name, "namespace": namespace, "uid": uid, "finalizers": [OPERATORS]},
            "spec": {"templateID": ALLOWED, "templateParameters": json.dumps({"cpu_cores": 2})},
            "status": {"phase": "Progressing", "desiredConfigVersion": "abc"}}


# -- generated values ---------------------------------------------------------------------------------------------

# Anything JSON can carry, and what Ansible extra vars can carry.
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                           max_leaves=8)
non_strings = st.one_of(st.booleans(), st.integers(), st.floats(allow_nan=False), st.lists(scalars, max_size=3),
                        st.dictionaries(st.text(max_size=5), scalars, max_size=2))
# Strings that are no JSON object: not JSON at all, or the JSON of a number, list, string or boolean.
non_object_strings = st.one_of(
    st.text(max_size=30).filter(lambda text: not _decodes_to(text, (dict, type(None)))),
    json_values.filter(lambda value: not isinstance(value, dict) and value is not None).map(json.dumps),
)
jinja = st.sampled_from(["{{ lookup('pipe', 'id') }}", "{% if true %}x{% endif %}", "{{ 7 * 7 }}"])
_bad_name_chars = st.sampled_from(list("ABZ_ /:@!*+{}\u00e9\u0130\n\t") + ["\u200b", "\ud7ff"])


def _decodes_to(text, types):
    try:
        return isinstance(json.loads(text), types)
    except (ValueError, RecursionError):
        return False


@st.composite
def bad_dns_names(draw, label=False):
    """Strings that are not DNS-1123 names (labels: no dots, at most 63), by construction or by filter."""
    good = draw(st.from_regex(r"[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?" if label else r"[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?(\.[a-z0-9]{1,5})?",
                              fullmatch=True))
    variant = draw(st.sampled_from(["char", "edge", "newline", "long", "empty", "any", "jinja"] + (["dot"] if label else [])))
    if variant == "char":
        at = draw(st.integers(0, len(good)))
        bad = good[:at] + draw(_bad_name_chars) + good[at:]
    elif variant == "edge":
        bad = draw(st.sampled_from(["-", "."])) + good if draw(st.booleans()) else good + draw(st.sampled_from(["-", "."]))
    elif variant == "newline":
        bad = good + "\n"
    elif variant == "long":
        bad = good + "a" * ((64 if label else 254) - len(good))
    elif variant == "empty":
        bad = ""
    elif variant == "dot":
        bad = good + ".x"
    elif variant == "jinja":
        bad = draw(jinja)
    else:
        bad = draw(st.text(max_size=70))
    valid = is_dns_label(bad) if label else is_dns_subdomain(bad)
    return good.upper() + "_" if valid else bad


@st.composite
def malformed_envelopes(draw):
    """(extra vars, the field the error must name, the instance they were made from): one thing wrong."""
    shape = draw(st.sampled_from(sorted(SOURCES)))
    source = SOURCES[shape]
    obj = instance()
    kind = draw(st.sampled_from(["payload", "level", "metadata", "name", "namespace", "uid", "kind", "apiVersion", "two instances"]))
    if kind == "payload":
        return envelope(draw(st.one_of(non_strings.filter(lambda value: not isinstance(value, dict)), non_object_strings)), shape), source, obj
    if kind == "level":
        level_shape, keys = draw(st.sampled_from(ENVELOPE_LEVELS))
        extra_vars = envelope(obj, level_shape)
        node = extra_vars
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = draw(st.one_of(non_strings.filter(lambda value: not isinstance(value, dict)), non_object_strings))
        return extra_vars, ".".join(keys), obj
    if kind == "metadata":
        if draw(st.booleans()):
            del obj["metadata"]
        else:
            obj["metadata"] = draw(st.one_of(st.none(), non_strings.filter(lambda value: not isinstance(value, dict)), st.text(max_size=10)))
        return envelope(obj, shape), source + ".metadata", instance()
    if kind in ("name", "namespace"):
        bad = draw(st.one_of(st.none(), non_strings, bad_dns_names(label=kind == "namespace")))
        if bad is None and draw(st.booleans()):
            del obj["metadata"][kind]
        else:
            obj["metadata"][kind] = bad
        return envelope(obj, shape), "%s.metadata.%s" % (source, kind), instance()
    if kind == "uid":
        obj["metadata"]["uid"] = draw(non_strings)
        return envelope(obj, shape), source + ".metadata.uid", instance()
    if kind == "kind":
        obj["kind"] = draw(st.one_of(non_strings, st.text(max_size=20)).filter(lambda value: value != "ComputeInstance"))
        return envelope(obj, shape), source + ".kind", instance()
    if kind == "apiVersion":
        obj["apiVersion"] = draw(st.one_of(non_strings, st.text(max_size=20).filter(lambda text: "/" not in text)))
        return envelope(obj, shape), source + ".apiVersion", instance()
    # Two envelopes that name different instances: the job cannot know which one it is about.
    other_shape = draw(st.sampled_from(sorted(set(SOURCES) - {shape})))
    other = instance(name=draw(st.sampled_from(["vm2", "other"])))
    extra_vars = dict(envelope(obj, shape), **envelope(other, other_shape))
    return extra_vars, SOURCES[min(shape, other_shape, key=list(SOURCES).index)], obj


# Values of templateParameters keys, each bad by construction, with what makes them bad.
def _quantity(number, suffix):
    return "%s%s" % (number, suffix)


bad_memory = st.one_of(
    non_strings,
    st.text(alphabet=st.characters(blacklist_categories=("Nd",)), min_size=1, max_size=12),  # no digit: never a quantity
    st.builds(_quantity, st.integers(1, 63), st.just("Mi")),                                   # below 64Mi
    st.builds(_quantity, st.integers(5, 10 ** 6), st.just("Ti")),                              # above 4Ti
    st.builds(_quantity, st.integers(1, 64), st.sampled_from(["GB", "gi", "G i", "Gi\n", "Gi ", "iB", "-"])),
    st.builds("-{}Gi".format, st.integers(1, 64)),
    st.builds("{}Gi".format, st.integers(10 ** 300, 10 ** 400)),                              # beyond any float
    st.builds("{}Gi".format, st.text(alphabet="0123456789", min_size=400, max_size=600)),
)
bad_disk = st.one_of(
    non_strings,
    st.builds(_quantity, st.integers(1, 1023), st.just("Mi")),                                 # below 1Gi
    st.builds(_quantity, st.integers(65, 10 ** 6), st.just("Ti")),                             # above 64Ti
    st.builds(_quantity, st.integers(1, 64), st.sampled_from(["Gi\n", " Gi", "gb", "Gb"])),
    st.builds("{}Gi".format, st.integers(10 ** 300, 10 ** 400)),
)
bad_cores = st.one_of(
    st.integers(max_value=0), st.integers(min_value=257), st.booleans(), st.floats(allow_nan=False), st.lists(st.integers(), min_size=1, max_size=2),
    st.builds(str, st.integers(max_value=0)), st.builds(str, st.integers(min_value=257)),
    st.text(min_size=1, max_size=8).filter(lambda text: not (text.strip().isascii() and text.strip().isdigit() and 1 <= int(text.strip()) <= 256)),
    st.sampled_from(["\u00b2", "\u0663", "1\u00b2", "9" * 5000, "2.0", "0x10", "1e2", "+2"]),
)
# Sizes in GiB (memoryGiB, bootDisk.sizeGiB, additionalDisks[].sizeGiB): at least 1, far below a million.
bad_gib = st.one_of(
    st.integers(max_value=0), st.integers(min_value=10 ** 6), st.booleans(), st.floats(allow_nan=False), st.lists(st.integers(), min_size=1, max_size=2),
    st.text(min_size=1, max_size=8).filter(lambda text: not (text.strip().isascii() and text.strip().isdigit())),
    st.sampled_from(["\u00b2", "\u0663", "9" * 5000, "2.0", "0x10", "-1", "0"]),
)
bad_images = st.one_of(
    non_strings,
    st.sampled_from(["", "Fedora", "quay.io/", ":40", "fedora:40\n", "fedora:40 ", "docker://", "a//b", "fedora@sha256:abc", "quay.io/UPPER:1",
                     "x" * 600, "-fedora", "fedora:-1"]),
    st.text(min_size=1, max_size=20).filter(lambda text: not re.fullmatch(r"[A-Za-z0-9._/:@-]*", text)),  # a character no reference has
)
# A real ed25519 public key body (type string, then 32 key bytes).
ED25519_BODY = "AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"
bad_ssh_keys = st.one_of(
    non_strings.filter(lambda value: value not in (0, False, 0.0)),
    st.sampled_from([" ", "AAAA", "ssh-ed25519", "ssh-ed25519 !!!", "ssh-dsa AAAA", "ssh-ed25519AAAA",
                     # well-formed keys whose comment or body could break out of a cloud-config document, or lie about the type
                     "ssh-ed25519 %s me\u2028ssh_pwauth: true" % ED25519_BODY, "ssh-ed25519 %s me\rssh_pwauth: true" % ED25519_BODY,
                     "ssh-ed25519 %s a\x00b" % ED25519_BODY, "ssh-ed25519 %s \u202eevil" % ED25519_BODY,
                     "ssh-ed25519 %s me\u0085x" % ED25519_BODY, "ssh-rsa %s me" % ED25519_BODY, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB7 x"]),
    st.text(min_size=1, max_size=20).filter(lambda text: not text.strip().startswith(("ssh-", "ecdsa-", "sk-"))),
)
bad_ports = st.one_of(
    st.integers(), st.floats(allow_nan=False), st.booleans(), st.dictionaries(st.text(max_size=3), st.integers(), min_size=1, max_size=2),
    st.sampled_from(["0", "65536", "22/icmp", "22/tcp,", ",", "http", "22:tcp", "-1", "22/tcp,99999", "1.5"]),
    st.lists(st.sampled_from(["0", "x", 70000, None, "22/ip"]), min_size=1, max_size=3),
)
PARAMETER_VALUES = {
    "cpu_cores": bad_cores, "memory": bad_memory, "disk_size": bad_disk, "image": bad_images, "ssh_public_key": bad_ssh_keys,
    "cloud_init": non_strings.filter(lambda value: value not in (0, False, 0.0)), "exposed_ports": bad_ports,
}


@st.composite
def bad_specs(draw, live=False):
    """(spec, field the error must name): one thing wrong. live=True: only what the CRD admits (a string templateParameters)."""
    spec = {"templateID": ALLOWED}
    kind = draw(st.sampled_from(["parameter", "unknown key", "not json", "not an object"] + ["typed"] * 2))
    if kind == "parameter":
        key = draw(st.sampled_from(sorted(PARAMETER_VALUES)))
        spec["templateParameters"] = json.dumps({key: draw(PARAMETER_VALUES[key])})
        return spec, "spec.templateParameters." + key
    if kind == "unknown key":
        key = draw(st.one_of(st.sampled_from(["cores", "cpu", "memoryGiB", "Image", "cloud-init", "__proto__", "templateID"]),
                             st.text(min_size=1, max_size=10)).filter(lambda text: text not in PARAMETER_VALUES))
        spec["templateParameters"] = json.dumps({key: draw(json_values)})
        return spec, "spec.templateParameters"
    if kind == "not json":
        spec["templateParameters"] = draw(st.one_of(
            st.text(min_size=1, max_size=40).filter(lambda text: not _decodes_to(text, object)),
            st.sampled_from(["{", "{'cpu_cores': 2}", "{cpu_cores: 2}", '{"cpu_cores": 2,}', "[" * 5000, "NaN-ish"])))
        return spec, "spec.templateParameters"
    if kind == "not an object":
        value = draw(json_values.filter(lambda value: not isinstance(value, dict) and value not in (None, "")))
        spec["templateParameters"] = json.dumps(value) if live or draw(st.booleans()) else value
        return spec, "spec.templateParameters"
    # The later typed fields; with live=True only values of the CRD's types.
    field = draw(st.sampled_from(["cores", "memoryGiB", "bootDisk.sizeGiB", "image.sourceRef", "sshKey", "userDataSecretRef", "additionalDisks"]
                                 + ([] if live else ["runStrategy"])))
    integer = st.integers(10 ** 6, 2 ** 53) if live else bad_gib
    if field == "cores":
        spec["cores"] = draw(st.integers(257, 2 ** 53) if live else bad_cores)
    elif field == "memoryGiB":
        spec["memoryGiB"] = draw(integer)
    elif field == "bootDisk.sizeGiB":
        spec["bootDisk"] = {"sizeGiB": draw(integer)}
    elif field == "image.sourceRef":
        spec["image"] = {"sourceRef": draw(bad_images.filter(lambda value: isinstance(value, str)) if live else bad_images)}
    elif field == "sshKey":
        spec["sshKey"] = draw(bad_ssh_keys.filter(lambda value: isinstance(value, str)) if live else bad_ssh_keys)
    elif field == "userDataSecretRef":
        spec["userDataSecretRef"] = draw(st.sampled_from([{}, {"name": ""}]) if live else st.one_of(
            st.sampled_from([{}, {"name": ""}, {"name": 5}, "secret", ["x"]])))
    elif field == "additionalDisks":
        spec["additionalDisks"] = [{"sizeGiB": 1}, {"sizeGiB": draw(integer)}]
        field = "additionalDisks[1].sizeGiB"
    else:
        spec["runStrategy"] = draw(st.one_of(non_strings, st.text(max_size=10)).filter(lambda value: value not in ("Always", "Halted")))
    return spec, "spec." + field


def _raised(func, *args):
    try:
        func(*args)
    except Exception as error:  # pylint: disable=broad-exception-caught  # which type is what the test checks
        return error
    return None


# -- in-process: wide ---------------------------------------------------------------------------------------------

@WIDE
@given(malformed_envelopes())
@example(({"compute_instance": dict(instance(), metadata={"name": "vm1\n", "namespace": "tenants"})}, "compute_instance.metadata.name", None))
@example(({"compute_instance": dict(instance(), metadata={"name": "vm1", "namespace": "tenants\n"})}, "compute_instance.metadata.namespace", None))
@example(({"osac_job_vars": {"resource": "[" * 5000}}, "osac_job_vars.resource", None))
def test_identify_refuses_malformed_envelopes_naming_the_field(case):
    extra_vars, field, _obj = case
    error = _raised(identify, extra_vars)
    check(TYPED, isinstance(error, EnvelopeError), "identify(%.300r) gave %.300r" % (extra_vars, error))
    check(NAMED, field in str(error), "%.300r does not name %s" % (str(error), field))


@WIDE
@given(st.one_of(non_strings.filter(lambda value: not isinstance(value, dict)), non_object_strings, st.sampled_from(["[" * 5000, "{" * 5000])))
def test_identify_refuses_extra_vars_that_are_no_mapping(extra_vars):
    error = _raised(identify, extra_vars)
    check(TYPED, isinstance(error, EnvelopeError), "identify(%.200r) gave %.300r" % (extra_vars, error))
    check(NAMED, "extra vars" in str(error), str(error))


@WIDE
@given(bad_specs())
# Each of these once crashed vm_parameters (a traceback in the job) or passed unnoticed.
@example(({"templateParameters": json.dumps({"cpu_cores": "\u00b2"})}, "spec.templateParameters.cpu_cores"))
@example(({"templateParameters": json.dumps({"cpu_cores": "9" * 5000})}, "spec.templateParameters.cpu_cores"))
@example(({"cores": "\u0663"}, "spec.cores"))
@example(({"templateParameters": json.dumps({"memory": "1" * 400 + "Gi"})}, "spec.templateParameters.memory"))
@example(({"templateParameters": json.dumps({"memory": "4Gi\n"})}, "spec.templateParameters.memory"))
@example(({"templateParameters": json.dumps({"disk_size": "20Gi\n"})}, "spec.templateParameters.disk_size"))
@example(({"templateParameters": json.dumps({"image": "quay.io/containerdisks/fedora:40\n"})}, "spec.templateParameters.image"))
@example(({"templateParameters": "[" * 5000}, "spec.templateParameters"))
def test_vm_parameters_refuse_bad_specs_naming_the_field(case):
    spec, field = case
    error = _raised(vm_parameters, spec)
    check(TYPED, isinstance(error, ParameterError), "vm_parameters(%.300r) gave %.300r" % (spec, error))
    check(NAMED, field in str(error), "%.300r does not name %s" % (str(error), field))


NEAR_MISSES = [ALLOWED + "\n", " " + ALLOWED, ALLOWED.upper(), ALLOWED + ".x", "cloudkit.provisioning.eda_config", "kubernetes.core.k8s"]


@WIDE
@given(st.one_of(non_strings, st.none(), st.text(max_size=40), jinja, st.sampled_from(NEAR_MISSES)).filter(lambda value: value != ALLOWED))
def test_templates_off_the_allow_list_are_refused_naming_the_field(template_id):
    error = _raised(check_template, template_id)
    check(TYPED, isinstance(error, ParameterError), "check_template(%.300r) gave %.300r" % (template_id, error))
    check(NAMED, "spec.templateID" in str(error), str(error))


# -- through the playbooks: bounded -------------------------------------------------------------------------------

def _retarget(extra_vars, namespace):
    """Point every well-formed instance in the extra vars at `namespace` (where the test's instance lives)."""
    for obj in _objects(extra_vars):
        if isinstance(obj.get("metadata"), dict) and obj["metadata"].get("namespace") == "tenants":
            obj["metadata"]["namespace"] = namespace
    return extra_vars


def _objects(extra_vars):
    for keys in (("ansible_eda", "event", "payload"), ("osac_job_vars", "resource"), ("compute_instance",)):
        node = extra_vars
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            yield node


@pytest.fixture
def target(operator, namespace):
    """An instance the operator created and has not provisioned yet: what the malformed envelopes were made from."""
    return operator.create(namespace, "vm1", {"cpu_cores": 2})


@pytest.fixture
def held(operator, namespace):
    """A provisioned instance (our finalizer) being deleted: a delete job that understood the payload would act on it."""
    operator.create(namespace, "vm1", {})
    operator.custom.patch_namespaced_custom_object(GROUP, "v1alpha1", namespace, "computeinstances", "vm1", {"metadata": {"finalizers": [OPERATORS, OURS]}})
    operator.delete(namespace, "vm1")
    yield operator.get(namespace, "vm1")
    operator.custom.patch_namespaced_custom_object(GROUP, "v1alpha1", namespace, "computeinstances", "vm1", {"metadata": {"finalizers": []}})


def _named(name, shape="eda"):
    """Extra vars delivering the test's instance under another name (what the case's error must name)."""
    obj = instance()
    obj["metadata"]["name"] = name
    return envelope(obj, shape), SOURCES[shape] + ".metadata.name", obj


def _refused_untouched(playbook, case, before, finalizers, operator, run_job, namespace):
    """Run `playbook` on a malformed envelope: refused naming the field; nothing created; vm1's finalizers, status and
    annotations as they were (`before`, with `finalizers`)."""
    extra_vars, field, _obj = case
    result = run_job(playbook, _retarget(extra_vars, namespace))
    refused(result, field)
    left = operator.leftovers(namespace, operator.vm_namespace)
    check(NOTHING, not left, "left behind: %s" % left)
    live = operator.get(namespace, "vm1")
    check(NO_FINALIZER, live["metadata"]["finalizers"] == finalizers, "finalizers now %s" % live["metadata"]["finalizers"])
    check(UNTOUCHED, live["status"] == before["status"] and live["metadata"].get("annotations") == before["metadata"].get("annotations"),
          "%s -> %s" % (before["status"], live["status"]))


@PLAYBOOK
@given(case=malformed_envelopes())
# Jinja is data: rendered, this name would become 'vm1' and the job would provision that instance.
@example(case=_named("{{ 'vm' ~ 1 }}"))
@example(case=_named("vm1\n", "hand"))
def test_create_job_refuses_malformed_envelopes(case, target, operator, run_job, namespace):
    _refused_untouched("create_compute_instance.yml", case, target, [OPERATORS], operator, run_job, namespace)


@settings(PLAYBOOK, max_examples=8)
@given(case=malformed_envelopes())
# Rendered, this name would become 'vm1': the job would deprovision that instance and remove our finalizer.
@example(case=_named("{{ 'vm' ~ 1 }}", "osac"))
def test_delete_job_refuses_malformed_envelopes(case, held, operator, run_job, namespace):
    _refused_untouched("delete_compute_instance.yml", case, held, [OPERATORS, OURS], operator, run_job, namespace)


@settings(PLAYBOOK, max_examples=8)
@given(case=bad_specs(live=True), shape=st.sampled_from(sorted(SOURCES)), off_list=st.sampled_from([None] * 5 + ["some.other.role", "cloudkit_evil"]))
# These once made the module crash with a traceback, the job failing without touching the instance.
@example(case=({"templateParameters": json.dumps({"cpu_cores": "\u00b2"})}, "spec.templateParameters.cpu_cores"), shape="eda", off_list=None)
@example(case=({"templateParameters": json.dumps({"memory": "1" * 400 + "Gi"})}, "spec.templateParameters.memory"), shape="osac", off_list=None)
def test_create_job_fails_an_invalid_instance_naming_the_field(case, shape, off_list, operator, run_job, namespace):
    spec, field = case
    if off_list:
        spec, field = {"templateID": off_list}, "spec.templateID"
    name = "bad-" + uuid.uuid4().hex[:8]
    created = operator.create(namespace, name, None, **spec)
    result = run_job("create_compute_instance.yml", envelope(created, shape))
    refused(result, field)
    left = operator.leftovers(namespace, operator.vm_namespace)
    check(NOTHING, not left, "left behind: %s" % left)
    live = operator.get(namespace, name)
    check(NO_FINALIZER, OURS not in live["metadata"]["finalizers"], str(live["metadata"]["finalizers"]))
    progressing = next((c for c in live["status"].get("conditions") or [] if c["type"] == "Progressing"), {})
    check(FAILED_PHASE, live["status"].get("phase") == "Failed" and progressing.get("status") == "False" and field in progressing.get("message", ""),
          "%s" % live["status"])
    check(FAILED_PHASE, RECONCILED not in (live["metadata"].get("annotations") or {}), "reconciled despite the failure")
