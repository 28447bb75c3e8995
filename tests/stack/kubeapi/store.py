"""Object storage: one global resourceVersion, cached serialized bytes per object state, watch history and fan-out.

Everything here runs on the server's event loop thread, so no locking is needed.
"""
from __future__ import annotations

import asyncio
import collections
import json
from dataclasses import dataclass, field
from typing import Callable

from .schema import CRDSchema

dumps = json.JSONEncoder(separators=(',', ':'), ensure_ascii=False).encode


def to_bytes(obj: dict) -> bytes:
    """Compact JSON, the one serialization every response and watch event reuses."""
    return dumps(obj).encode()


@dataclass
class ResourceType:
    """What discovery says about one resource, plus the server-side behaviour switches."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: list = field(default_factory=list)
    categories: list = field(default_factory=list)
    status_subresource: bool = False
    has_generation: bool = False
    schema: CRDSchema | None = None
    strategic_merge: bool = False
    field_selectors: frozenset = frozenset()
    normalize: Callable | None = None
    returns_deleted_object: bool = False
    # A create-only review (SelfSubjectAccessReview, SelfSubjectReview): answer(body, user info) -> the created object, never stored.
    review: Callable | None = None

    @property
    def api_version(self) -> str:
        """``v1`` or ``group/version``."""
        return f'{self.group}/{self.version}' if self.group else self.version

    @property
    def key(self) -> tuple:
        """Storage key: group and plural (one storage per resource, whatever the version)."""
        return (self.group, self.plural)

    def discovery(self) -> list[dict]:
        """APIResource entries for /api/v1 or /apis/g/v (the resource and its status subresource)."""
        verbs = ['create'] if self.review else ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch']
        main = {'name': self.plural, 'singularName': self.singular, 'namespaced': self.namespaced, 'kind': self.kind, 'verbs': verbs}
        if self.short_names:
            main['shortNames'] = list(self.short_names)
        if self.categories:
            main['categories'] = list(self.categories)
        main['storageVersionHash'] = ''
        out = [main]
        if self.status_subresource:
            out.append({'name': f'{self.plural}/status', 'singularName': '', 'namespaced': self.namespaced, 'kind': self.kind,
                        'verbs': ['get', 'patch', 'update']})
        return out


class Entry:
    """A stored object state. ``obj`` is never mutated once stored; ``raw`` is its JSON."""

    __slots__ = ('obj', 'raw', 'owners')

    def __init__(self, obj: dict, owners: dict | None = None):
        self.obj = obj
        self.raw = to_bytes(obj)
        self.owners = owners or {}


class Event:
    """One change, with the watch-line bytes built once and shared by every watcher."""

    __slots__ = ('rv', 'tkey', 'etype', 'entry', 'old', '_lines')

    def __init__(self, rv: int, tkey: tuple, etype: str, entry: Entry, old: dict | None):
        self.rv = rv
        self.tkey = tkey
        self.etype = etype
        self.entry = entry
        self.old = old
        self._lines = {}

    def line(self, etype: str) -> bytes:
        """``{"type":..,"object":..}\\n`` for this event; a selector exit is DELETED with the old content and new RV."""
        cached = self._lines.get(etype)
        if cached is None:
            if etype == 'DELETED' and self.etype == 'MODIFIED':
                old = dict(self.old)
                old['metadata'] = dict(old['metadata'], resourceVersion=str(self.rv))
                raw = to_bytes(old)
            else:
                raw = self.entry.raw
            cached = b'{"type":"' + etype.encode() + b'","object":' + raw + b'}\n'
            self._lines[etype] = cached
        return cached


class Watcher:
    """One open watch: its filters and the queue the writer fans out to."""

    __slots__ = ('tkey', 'namespace', 'predicate', 'queue')

    def __init__(self, tkey: tuple, namespace: str | None, predicate):
        self.tkey = tkey
        self.namespace = namespace
        self.predicate = predicate
        self.queue: asyncio.Queue = asyncio.Queue()

    def _matches(self, obj: dict | None) -> bool:
        if obj is None:
            return False
        if self.namespace is not None and obj['metadata'].get('namespace') != self.namespace:
            return False
        return self.predicate is None or self.predicate(obj)

    def line_for(self, event: Event) -> bytes | None:
        """The line this watcher should see for the event, or None."""
        now = self._matches(event.entry.obj)
        if event.etype != 'MODIFIED' or self.predicate is None:
            return event.line(event.etype) if now else None
        before = self._matches(event.old)
        if now and before:
            return event.line('MODIFIED')
        if now:
            return event.line('ADDED')
        if before:
            return event.line('DELETED')
        return None

    def offer(self, event: Event) -> None:
        """Queue the event if it concerns this watcher."""
        line = self.line_for(event)
        if line is not None:
            self.queue.put_nowait(line)


def owner_uids(meta: dict) -> tuple:
    """The uids an object's ownerReferences name, sorted."""
    return tuple(sorted({ref['uid'] for ref in meta.get('ownerReferences') or [] if isinstance(ref, dict) and ref.get('uid')}))


class Store:
    """All objects of all types, the global resourceVersion and a bounded event history."""

    def __init__(self, history: int = 10000):
        self.types: dict[tuple, ResourceType] = {}
        self.objects: dict[tuple, dict] = {}
        self._sorted: dict[tuple, list | None] = {}
        self.rv = 1
        self.history: collections.deque = collections.deque(maxlen=max(1, history))
        self.compacted_rv = 1
        self.watchers: dict[tuple, set] = collections.defaultdict(set)
        # Objects per namespace across all types, so "is this namespace empty" is O(1).
        self.namespace_counts: collections.Counter = collections.Counter()
        # For the garbage collector: where each uid lives, and the objects whose ownerReferences name a uid.
        self.uids: dict[str, tuple] = {}
        self.dependents: dict[str, set] = {}
        self._owner_uids: dict[tuple, tuple] = {}

    # --- types -------------------------------------------------------------
    def add_type(self, rtype: ResourceType) -> None:
        """Register (or replace the definition of) a resource type, keeping its objects."""
        self.types[rtype.key] = rtype
        self.objects.setdefault(rtype.key, {})
        self._sorted.setdefault(rtype.key, None)

    def remove_type(self, key: tuple) -> None:
        """Forget a type and its objects (CRD deletion)."""
        self.types.pop(key, None)
        for (namespace, name), entry in self.objects.pop(key, {}).items():
            if namespace:
                self.namespace_counts[namespace] -= 1
            self._unindex(key, (namespace, name), entry.obj['metadata'])
        self._sorted.pop(key, None)

    def find_type(self, group: str, version: str, plural: str) -> ResourceType | None:
        """The type served at /apis/group/version/plural."""
        rtype = self.types.get((group, plural))
        if rtype is None or rtype.version != version:
            return None
        return rtype

    def group_versions(self) -> dict:
        """{group: [versions]} for discovery, core group excluded."""
        out: dict = {}
        for rtype in self.types.values():
            if rtype.group and rtype.version not in out.setdefault(rtype.group, []):
                out[rtype.group].append(rtype.version)
        return out

    # --- objects -----------------------------------------------------------
    def get(self, tkey: tuple, namespace: str | None, name: str) -> Entry | None:
        """The entry or None."""
        return self.objects.get(tkey, {}).get((namespace or '', name))

    def sorted_entries(self, tkey: tuple, namespace: str | None = None) -> list[Entry]:
        """Entries in etcd key order (namespace, name)."""
        bucket = self.objects.get(tkey, {})
        keys = self._sorted.get(tkey)
        if keys is None:
            keys = sorted(bucket)
            self._sorted[tkey] = keys
        if namespace is None:
            return [bucket[k] for k in keys]
        return [bucket[k] for k in keys if k[0] == namespace]

    def next_rv(self) -> int:
        """Allocate the next global resourceVersion."""
        self.rv += 1
        return self.rv

    def put(self, tkey: tuple, entry: Entry, etype: str, old: dict | None = None) -> None:
        """Store a new state (its RV already allocated) and publish the event."""
        meta = entry.obj['metadata']
        key = (meta.get('namespace') or '', meta['name'])
        bucket = self.objects[tkey]
        if key not in bucket:
            self._sorted[tkey] = None
            if key[0]:
                self.namespace_counts[key[0]] += 1
        bucket[key] = entry
        self._index(tkey, key, meta)
        self._publish(tkey, etype, entry, old)

    def remove(self, tkey: tuple, entry: Entry) -> None:
        """Drop an object; ``entry`` is its last state with a fresh RV."""
        meta = entry.obj['metadata']
        key = (meta.get('namespace') or '', meta['name'])
        if self.objects[tkey].pop(key, None) is not None and key[0]:
            self.namespace_counts[key[0]] -= 1
        self._unindex(tkey, key, meta)
        self._sorted[tkey] = None
        self._publish(tkey, 'DELETED', entry, None)

    def _index(self, tkey: tuple, key: tuple, meta: dict) -> None:
        ref = (tkey, key)
        if meta.get('uid'):
            self.uids[meta['uid']] = ref
        owners = owner_uids(meta)
        previous = self._owner_uids.get(ref, ())
        if owners == previous:
            return
        for uid in previous:
            self._drop_dependent(uid, ref)
        for uid in owners:
            self.dependents.setdefault(uid, set()).add(ref)
        if owners:
            self._owner_uids[ref] = owners
        else:
            self._owner_uids.pop(ref, None)

    def _unindex(self, tkey: tuple, key: tuple, meta: dict) -> None:
        ref = (tkey, key)
        if meta.get('uid') and self.uids.get(meta['uid']) == ref:
            del self.uids[meta['uid']]
        for uid in self._owner_uids.pop(ref, ()):
            self._drop_dependent(uid, ref)

    def _drop_dependent(self, owner_uid: str, ref: tuple) -> None:
        dependents = self.dependents.get(owner_uid)
        if dependents is not None:
            dependents.discard(ref)
            if not dependents:
                del self.dependents[owner_uid]

    def _publish(self, tkey: tuple, etype: str, entry: Entry, old: dict | None) -> None:
        event = Event(int(entry.obj['metadata']['resourceVersion']), tkey, etype, entry, old)
        if len(self.history) == self.history.maxlen:
            self.compacted_rv = self.history[0].rv
        self.history.append(event)
        for watcher in self.watchers.get(tkey, ()):
            watcher.offer(event)

    # --- watch -------------------------------------------------------------
    def events_since(self, rv: int, tkey: tuple) -> list[Event] | None:
        """Events of the type after ``rv``, or None when the history no longer reaches back that far."""
        if rv < self.compacted_rv:
            return None
        return [e for e in self.history if e.rv > rv and e.tkey == tkey]

    def oldest_rv(self) -> int:
        """The oldest resourceVersion a watch can still start from."""
        return self.compacted_rv

    def subscribe(self, watcher: Watcher) -> None:
        """Start fan-out to the watcher."""
        self.watchers[watcher.tkey].add(watcher)

    def unsubscribe(self, watcher: Watcher) -> None:
        """Stop fan-out to the watcher."""
        self.watchers[watcher.tkey].discard(watcher)
