# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""AnsibleModule with the shared connection options, a lazily built client and uniform API errors."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.cloudkit.provisioning.plugins.module_utils.envelope import EnvelopeError, identify
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube import URLLIB3_IMPORT_ERROR, KubeClient
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_errors import KubeError, NotFound
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_resources import contract_resources
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kubeconfig import (
    KubernetesRequired,
    auth_argument_spec,
)
from ansible_collections.cloudkit.provisioning.plugins.module_utils.lock import Fenced, LeaseFence
from ansible_collections.cloudkit.provisioning.plugins.module_utils.names import Names

API_GROUP_SPEC = {"api_group": {"type": "str", "fallback": (env_fallback, ["CLOUDKIT_API_GROUP"])}}

# Which ComputeInstance: by name, or from the job's extra vars (doc fragment cloudkit.provisioning.instance).
INSTANCE_SPEC = dict(
    {"name": {"type": "str"}, "namespace": {"type": "str"}, "uid": {"type": "str"}, "payload": {"type": "raw"}},
    **API_GROUP_SPEC
)
INSTANCE_CONSTRAINTS = {
    "mutually_exclusive": [("name", "payload"), ("namespace", "payload"), ("uid", "payload")],
    "required_together": [("name", "namespace")],
    "required_one_of": [("name", "payload")],
}


class KubeModule(AnsibleModule):
    """A module that talks to the Kubernetes API through kube.KubeClient."""

    def __init__(self, argument_spec, **kwargs):
        spec = auth_argument_spec()
        spec.update(argument_spec)
        super().__init__(argument_spec=spec, **kwargs)
        # kubeconfig is no_log for its content (a dict with tokens and keys); a path is no secret, and masking it would
        # turn "No configuration found at /wrong/path" into "... at ********".
        if isinstance(self.params.get("kubeconfig"), str):
            self.no_log_values.discard(self.params["kubeconfig"])
        self._client = None
        self.fence = None

    def _new_client(self):
        options = dict((option, self.params.get(option)) for option in auth_argument_spec())
        return KubeClient.from_options(options)

    @property
    def client(self):
        if self._client is None:
            if URLLIB3_IMPORT_ERROR is not None:
                self.fail_json(msg=missing_required_lib("urllib3"), exception=str(URLLIB3_IMPORT_ERROR))
            try:
                self._client = self._new_client()
            except KubernetesRequired as exc:
                # Only kubeconfig users with exec or auth-provider need the kubernetes client.
                self.fail_json(
                    msg=missing_required_lib("kubernetes", reason="for a kubeconfig user with exec or auth-provider"),
                    exception=str(exc.import_error),
                )
            except Exception as exc:  # kubeconfig and in-cluster loading raise several types
                self.fail_json(msg=f"cannot configure the Kubernetes client: {exc}")
        return self._client

    def names(self, api_group=None):
        """Names for api_group (the option, else the given default); a bad group fails naming the option."""
        try:
            names = Names(self.params.get("api_group") or api_group)
        except ValueError as exc:
            self.fail_json(msg=str(exc))
        for resource in contract_resources(names):
            self.client.register(resource)
        return names

    def identify_instance(self):
        """(identity dict, Names) of the ComputeInstance named by name/namespace or payload."""
        params = self.params
        if params.get("payload") is None:
            names = self.names()
            return {
                "name": params["name"],
                "namespace": params["namespace"],
                "uid": params.get("uid") or None,
                "api_group": names.api_group,
                "source": "name",
            }, names
        try:
            identity = identify(params["payload"], params.get("api_group"))
        except EnvelopeError as exc:
            self.fail_json(msg=f"payload: {exc}")
        names = self.names(identity.api_group)
        facts = identity.as_dict()
        facts["api_group"] = names.api_group
        return facts, names

    def read_instance(self, identity, names):
        """(live ComputeInstance or None, why it is None). A re-created namesake is not the job's instance."""
        where = "ComputeInstance {}/{}".format(identity["namespace"], identity["name"])
        try:
            live = self.client.get(contract_resources(names)[0], identity["name"], identity["namespace"])
        except NotFound:
            return None, "the ComputeInstance no longer exists"
        except KubeError as error:
            return self.fail_api(error, f"cannot read {where}"), None
        if identity.get("uid") and live["metadata"].get("uid") != identity["uid"]:
            return None, "the ComputeInstance {} was deleted and re-created (uid {})".format(
                identity["uid"], live["metadata"].get("uid")
            )
        return live, None

    def hold_lease(self, instance, names, holder, stop_if_deleting=False):
        """Fence every later write of this module with the instance's Lease, held by `holder`.

        Fails at once when the lease is no longer the job's; from here on a background thread renews it,
        and a write after the lease was lost (or, with `stop_if_deleting`, once the instance is being
        deleted or was re-created) is refused before it is sent.
        """
        metadata = instance["metadata"]
        resource = contract_resources(names)[0]
        # The fence's own requests (Lease renewals, instance reads) must not pass through the fence.
        fence_client = self._new_client()
        fence = LeaseFence(
            fence_client,
            metadata["namespace"],
            metadata["uid"],
            holder,
            instance_reader=lambda: fence_client.get_or_none(resource, metadata["name"], metadata["namespace"]),
            stop_if_deleting=stop_if_deleting,
        )
        try:
            fence.observe(instance)
            fence.check()
        except KubeError as error:
            self.fail_api(error, "ComputeInstance {}/{}".format(metadata["namespace"], metadata["name"]))
        self.fence = fence.start()
        self.client.before_write = fence.check
        return fence

    def release_fence(self):
        """After the job's last fenced write: stop renewing and checking (the release or the instance's end may
        follow)."""
        if self.fence is not None:
            self.fence.close()
            self.fence = None
            self.client.before_write = None

    def exit_json(self, **kwargs):
        # A job that lost its lease (or its instance) while this module ran must not report success.
        if self.fence is not None:
            fence, self.fence = self.fence, None
            try:
                fence.check()
            except KubeError as error:
                self.fail_api(
                    error,
                    "stopped before reporting success",
                    **dict((k, v) for k, v in kwargs.items() if k not in ("msg", "failed")),
                )
            finally:
                fence.close()
        super().exit_json(**kwargs)

    def fail_api(self, error, action, **result):
        """Fail with the API's own message and the error's status and reason."""
        if isinstance(error, Fenced):
            result.update(fenced=error.reason)
        self.fail_json(msg=f"{action}: {error.message}", api_error=error.to_dict(), **result)

    def run(self, action, func, *args, **kwargs):
        """Call func; a KubeError fails the module with `action` as context."""
        try:
            return func(*args, **kwargs)
        except KubeError as error:
            return self.fail_api(error, action)
