"""The four PATCH flavours kube-apiserver accepts: JSON merge, JSON patch, strategic merge, server-side apply."""
from __future__ import annotations

import copy

import jsonpatch

from .errors import APIError, bad_request

# Strategic merge keys of the built-in list fields this server knows (field name -> merge key).
# `ports` is ambiguous: containerPort inside containers, port in a Service spec.
MERGE_KEYS = {
    'containers': 'name', 'initContainers': 'name', 'ephemeralContainers': 'name', 'env': 'name', 'volumes': 'name',
    'volumeMounts': 'mountPath', 'volumeDevices': 'devicePath', 'imagePullSecrets': 'name', 'ownerReferences': 'uid',
    'conditions': 'type', 'hostAliases': 'ip', 'topologySpreadConstraints': 'topologyKey',
}
# Lists of scalars merged as sets (patchStrategy=merge without a key).
PRIMITIVE_MERGE = {'finalizers'}
_MISSING = object()


def json_merge(target, patch):
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, val in patch.items():
        if val is None:
            out.pop(key, None)
        else:
            out[key] = json_merge(out.get(key), val)
    return out


def json_patch(target: dict, ops) -> dict:
    """RFC 6902. Any failure to apply (a failed ``test`` included) is the real server's generic 422."""
    if not isinstance(ops, list):
        raise bad_request('json: cannot unmarshal object into Go value of type jsonpatch.Patch')
    try:
        return jsonpatch.JsonPatch(ops).apply(target)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, KeyError, IndexError, TypeError) as exc:
        # kube-apiserver answers NewGenericServerResponse(422, ...): reason Invalid, fixed message, empty details;
        # it does not tell a failed `test` apart from a bad path, and neither do we.
        raise APIError(422, 'the server rejected our request due to an error in our request', 'Invalid', {}) from exc


def _merge_key(field: str, path: tuple) -> str | None:
    if field == 'ports':
        return 'containerPort' if any(p in ('containers', 'initContainers', 'ephemeralContainers') for p in path) else 'port'
    return MERGE_KEYS.get(field)


def strategic_merge(orig, patch, path: tuple = ()):
    """Strategic merge patch with the directives clients send: $patch, $retainKeys, $deleteFromPrimitiveList, $setElementOrder."""
    if not isinstance(patch, dict) or not isinstance(orig, dict):
        return _strip(patch)
    directive = patch.get('$patch')
    if directive == 'replace':
        return _strip(patch)
    if directive == 'delete':
        return None
    out = dict(orig)
    retain = patch.get('$retainKeys')
    for key, val in patch.items():
        if key.startswith('$setElementOrder/') or key in ('$patch', '$retainKeys'):
            continue
        if key.startswith('$deleteFromPrimitiveList/'):
            name = key.split('/', 1)[1]
            if isinstance(out.get(name), list):
                out[name] = [v for v in out[name] if v not in val]
            continue
        if val is None:
            out.pop(key, None)
        elif isinstance(val, dict) and isinstance(out.get(key), dict):
            merged = strategic_merge(out[key], val, path + (key,))
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
        elif isinstance(val, list) and isinstance(out.get(key), list):
            out[key] = _merge_list(key, out[key], val, path + (key,))
        else:
            out[key] = _strip(val)
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    return out


def _merge_list(field: str, orig: list, patch: list, path: tuple) -> list:
    if any(isinstance(p, dict) and p.get('$patch') == 'replace' for p in patch):
        return [_strip(p) for p in patch if not (isinstance(p, dict) and p.get('$patch') == 'replace')]
    if field in PRIMITIVE_MERGE:
        out = list(orig)
        out.extend(v for v in patch if v not in out)
        return out
    key = _merge_key(field, path)
    if not key or not all(isinstance(p, dict) for p in patch):
        return [_strip(p) for p in patch]
    out = list(orig)
    for item in patch:
        idx = next((i for i, o in enumerate(out) if isinstance(o, dict) and o.get(key) == item.get(key)), None)
        if item.get('$patch') == 'delete':
            if idx is not None:
                out.pop(idx)
        elif idx is None:
            out.append(_strip(item))
        else:
            out[idx] = strategic_merge(out[idx], item, path)
    return out


def _strip(value):
    """Drop SMP directives from a value that is copied in wholesale."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith('$')}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def leaf_paths(value, prefix: tuple = ()) -> dict:
    """Field paths an applied configuration sets (lists are atomic) -> value."""
    if isinstance(value, dict) and value:
        out = {}
        for key, val in value.items():
            out.update(leaf_paths(val, prefix + (key,)))
        return out
    return {prefix: value}


def _get(obj, path: tuple):
    cur = obj
    for part in path:
        if not isinstance(cur, dict) or part not in cur:
            return _MISSING
        cur = cur[part]
    return cur


def _delete(obj: dict, path: tuple) -> None:
    parents = []
    cur = obj
    for part in path[:-1]:
        if not isinstance(cur, dict) or part not in cur:
            return
        parents.append((cur, part))
        cur = cur[part]
    if isinstance(cur, dict):
        cur.pop(path[-1], None)
    # An object left empty by removing an owned field goes too, as with SSA.
    for parent, part in reversed(parents):
        if parent[part] == {}:
            del parent[part]
        else:
            break


_SYSTEM = {('metadata', 'resourceVersion'), ('metadata', 'uid'), ('metadata', 'generation'), ('metadata', 'creationTimestamp'),
           ('metadata', 'managedFields'), ('apiVersion',), ('kind',), ('metadata', 'name'), ('metadata', 'namespace')}


def applied_paths(applied: dict) -> dict:
    """The field paths an apply manager takes ownership of (server-managed fields excluded)."""
    return {p: v for p, v in leaf_paths(applied).items() if p and p not in _SYSTEM}


def server_side_apply(live: dict, applied: dict, manager: str, owners: dict, force: bool, conflict_error) -> tuple[dict, dict]:
    """Merge ``applied`` onto ``live``; ``owners`` maps manager -> set of field paths it applied.

    Conflicts are detected only between apply managers (no ownership is recorded for plain updates);
    lists are atomic. Returns the merged object and the new ownership map.
    """
    new_paths = applied_paths(applied)
    owners = {m: set(paths) for m, paths in owners.items()}
    conflicts = []
    for path, val in new_paths.items():
        for other, paths in owners.items():
            if other != manager and path in paths and _get(live, path) != val:
                conflicts.append((other, path))
    if conflicts and not force:
        lines = [f'conflict with "{m}": .{".".join(p)}' for m, p in conflicts]
        count = len(lines)
        raise conflict_error(f'Apply failed with {count} conflict{"s" if count > 1 else ""}: ' + '\n'.join(lines))
    for other, path in conflicts:
        owners[other].discard(path)
    merged = copy.deepcopy(live)
    for path, val in new_paths.items():
        cur = merged
        for part in path[:-1]:
            if not isinstance(cur.get(part), dict):
                cur[part] = {}
            cur = cur[part]
        cur[path[-1]] = copy.deepcopy(val)
    previous = owners.get(manager, set())
    still_owned = set().union(*[paths for m, paths in owners.items() if m != manager])
    for path in previous - set(new_paths) - still_owned:
        _delete(merged, path)
    owners[manager] = set(new_paths)
    return merged, owners
