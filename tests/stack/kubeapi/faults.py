"""The fault switch: injected errors, latency and cut watch streams, for reliability tests."""
from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field

from .errors import status_body

_FAULT_BODIES = {
    409: ('Conflict', 'Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again'),
    429: ('TooManyRequests', 'the server has received too many requests and has asked us to try again later'),
    500: ('InternalError', 'Internal error occurred: injected fault'),
    503: ('ServiceUnavailable', 'the server is currently unable to handle the request'),
}
# Requests a real API server can answer 409 Conflict: writes (a read or a watch never conflicts).
_WRITE_METHODS = frozenset(('POST', 'PUT', 'PATCH', 'DELETE'))


@dataclass(frozen=True)
class FaultConfig:
    """One immutable setting; replaced as a whole so the server thread never sees a half-written one."""

    error_rate: float = 0.0
    error_codes: tuple = (500,)
    latency: float = 0.0
    cut_watches_after: float | None = None
    methods: tuple | None = None
    path_regex: str | None = None
    conflicts_on_writes_only: bool = False
    compiled: re.Pattern | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict:
        """JSON form used by the admin endpoint."""
        return {'error_rate': self.error_rate, 'error_codes': list(self.error_codes), 'latency': self.latency,
                'cut_watches_after': self.cut_watches_after, 'methods': list(self.methods) if self.methods else None,
                'path_regex': self.path_regex, 'conflicts_on_writes_only': self.conflicts_on_writes_only}


class FaultSwitch:
    """Thread-safe holder of the current FaultConfig plus a seedable RNG."""

    def __init__(self, seed: int | None = None):
        self._config = FaultConfig()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    @property
    def config(self) -> FaultConfig:
        """The active setting."""
        return self._config

    def set(self, error_rate: float = 0.0, error_codes=(500,), latency: float = 0.0, cut_watches_after: float | None = None,
            methods=None, path_regex: str | None = None, seed: int | None = None, conflicts_on_writes_only: bool = False) -> FaultConfig:
        """Replace the whole setting; unspecified knobs go back to harmless.

        ``conflicts_on_writes_only``: a read picked for a 409 gets one of the other ``error_codes`` instead (none when 409 is
        the only one), as a real API server answers 409 to writes only.
        """
        if not 0.0 <= float(error_rate) <= 1.0:
            raise ValueError('error_rate must be within 0..1')
        codes = tuple(int(c) for c in error_codes)
        unknown = [c for c in codes if c not in _FAULT_BODIES]
        if unknown:
            raise ValueError(f'unsupported error codes {unknown}; choose from {sorted(_FAULT_BODIES)}')
        cfg = FaultConfig(float(error_rate), codes, float(latency), None if cut_watches_after is None else float(cut_watches_after),
                          tuple(m.upper() for m in methods) if methods else None, path_regex, bool(conflicts_on_writes_only),
                          re.compile(path_regex) if path_regex else None)
        with self._lock:
            if seed is not None:
                self._rng.seed(seed)
            self._config = cfg
        return cfg

    def clear(self) -> None:
        """No faults."""
        with self._lock:
            self._config = FaultConfig()

    def applies(self, method: str, path: str) -> bool:
        """Whether the method/path filters select this request."""
        cfg = self._config
        if cfg.methods and method.upper() not in cfg.methods:
            return False
        return not (cfg.compiled and not cfg.compiled.search(path))

    def pick_error(self, method: str, path: str) -> tuple[int, dict, dict] | None:
        """(code, Status body, headers) when this request should fail, else None."""
        cfg = self._config
        if cfg.error_rate <= 0 or not self.applies(method, path):
            return None
        with self._lock:
            if self._rng.random() >= cfg.error_rate:
                return None
            code = self._rng.choice(cfg.error_codes)
            if code == 409 and cfg.conflicts_on_writes_only and method.upper() not in _WRITE_METHODS:
                others = [c for c in cfg.error_codes if c != 409]
                if not others:
                    return None
                code = self._rng.choice(others)
        reason, message = _FAULT_BODIES[code]
        headers = {}
        details = None
        if code == 429:
            headers['Retry-After'] = '1'
            details = {'retryAfterSeconds': 1}
        return code, status_body(code, message, reason, details), headers


# How often an open watch stream looks at the switch again, so a cut set while it is open reaches it.
FAULT_POLL = 0.1


def watch_cut_after(faults: FaultSwitch, path: str) -> float:
    """Seconds after its start at which a watch on ``path`` is cut now (infinity when no cut applies)."""
    after = faults.config.cut_watches_after if faults.applies('GET', path) else None
    return float('inf') if after is None else after
