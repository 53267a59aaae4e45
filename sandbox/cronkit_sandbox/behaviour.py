"""How each function of the sandbox's Edge Functions server behaves, set through its admin API.

Per function: the ``verify_jwt`` gate, a secret the function checks itself (:class:`CustomAuth`),
and what tests force: a status, latency, a failure rate, a body (:class:`Behaviour`).
:class:`FunctionTable` holds them beside the demo handlers.
"""

from __future__ import annotations

import dataclasses
import hmac
import random
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

from cronkit.redact import mask

HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")


@dataclasses.dataclass(frozen=True)
class CustomAuth:
    """A secret the function itself checks (with ``verify_jwt`` usually off), e.g. ``CRON_SECRET``."""

    header: str
    scheme: str | None
    secret: str

    def accepts(self, headers: Mapping[str, str]) -> bool:
        value = headers.get(self.header)
        if value is None:
            return False
        if self.scheme:
            prefix = f"{self.scheme} "
            if value[: len(prefix)].lower() != prefix.lower():
                return False
            value = value[len(prefix) :]
        return hmac.compare_digest(value.encode("utf-8"), self.secret.encode("utf-8"))

    def public(self) -> dict[str, Any]:
        return {"header": self.header, "scheme": self.scheme, "secret": mask(self.secret)}

    def __repr__(self) -> str:
        return f"CustomAuth(header={self.header!r}, scheme={self.scheme!r}, secret={mask(self.secret)})"


def _custom_auth(value: Any) -> CustomAuth | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"header", "scheme", "secret"}:
        raise ValueError('custom_auth must be {"header": ..., "scheme": "Bearer" or null, "secret": ...}')
    header = value.get("header", "authorization")
    scheme = value.get("scheme")
    secret = value.get("secret")
    if not isinstance(header, str) or not HEADER_NAME.fullmatch(header):
        raise ValueError("custom_auth.header must be an HTTP header name")
    if scheme is not None and not (isinstance(scheme, str) and scheme.isalpha()):
        raise ValueError("custom_auth.scheme must be a word such as Bearer, or null")
    if not isinstance(secret, str) or not secret:
        raise ValueError("custom_auth.secret must be a non-empty string")
    return CustomAuth(header=header.lower(), scheme=scheme, secret=secret)


def _optional_status(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise ValueError("status must be an HTTP status between 100 and 599, or null")
    return value


def _statuses(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(_optional_status(v) is not None for v in value):
        raise ValueError("statuses must be a list of HTTP statuses between 100 and 599")
    return tuple(value)


def _number(low: float, high: float, name: str) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise ValueError(f"{name} must be a number between {low:g} and {high:g}")
        return float(value)

    return check


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("verify_jwt must be true or false")
    return value


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("seed must be an integer")
    return value


@dataclasses.dataclass(frozen=True)
class Behaviour:
    """How a function answers. A forced ``status`` or ``body`` replaces the function: it does not run."""

    status: int | None = None
    latency_ms: float = 0.0
    #: share of invocations answered 500 without running the function
    failure_rate: float = 0.0
    #: share of queue items a demo drainer marks failed (the invocation itself succeeds)
    item_failure_rate: float = 0.0
    body: Any = None
    verify_jwt: bool = True
    custom_auth: CustomAuth | None = None
    #: seeds failure_rate's RNG and item_failure_rate's hash, so runs are repeatable
    seed: int = 0
    #: forced statuses answered in turn, one per invocation (counted from the last configure), before
    #: the function answers as the rest of its behaviour says: [503, 503] fails twice, then succeeds
    statuses: tuple[int, ...] = ()

    def merged(self, changes: Mapping[str, Any]) -> Behaviour:
        """A copy with ``changes`` (JSON from the admin API) validated and applied; ValueError if invalid."""
        unknown = sorted(set(changes) - set(_VALIDATORS))
        if unknown:
            raise ValueError(f"unknown behaviour keys {unknown}; known: {sorted(_VALIDATORS)}")
        return dataclasses.replace(self, **{key: _VALIDATORS[key](value) for key, value in changes.items()})

    def public(self) -> dict[str, Any]:
        """JSON for the admin API, with the custom-auth secret masked."""
        data = dataclasses.asdict(self)
        data["custom_auth"] = self.custom_auth.public() if self.custom_auth else None
        return data


#: A demo function: (parsed JSON body or None, app-role DSN or None, behaviour) -> (status, JSON).
Handler = Callable[[Any, str | None, Behaviour], tuple[int, Any]]

_VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "status": _optional_status,
    "latency_ms": _number(0, 600_000, "latency_ms"),
    "failure_rate": _number(0, 1, "failure_rate"),
    "item_failure_rate": _number(0, 1, "item_failure_rate"),
    "body": lambda value: value,
    "verify_jwt": _boolean,
    "custom_auth": _custom_auth,
    "seed": _integer,
    "statuses": _statuses,
}


class FunctionTable:
    """Which functions exist (demo handlers + anything configured) and how each behaves."""

    def __init__(self, handlers: Mapping[str, Handler]) -> None:
        self._handlers = dict(handlers)
        self._behaviours: dict[str, Behaviour] = {}
        self._rngs: dict[str, random.Random] = {}
        #: how many of ``Behaviour.statuses`` each function has answered since it was configured
        self._answered: dict[str, int] = {}
        self._lock = threading.Lock()

    def lookup(self, name: str) -> tuple[Behaviour, Handler | None] | None:
        with self._lock:
            if name not in self._handlers and name not in self._behaviours:
                return None
            return self._behaviours.get(name, Behaviour()), self._handlers.get(name)

    def configure(self, name: str, changes: Mapping[str, Any]) -> Behaviour:
        with self._lock:
            behaviour = self._behaviours.get(name, Behaviour()).merged(changes)
            self._behaviours[name] = behaviour
            # Restart the failure sequence so "configure, then call N times" is repeatable.
            self._rngs[name] = random.Random(f"{behaviour.seed}:{name}")
            self._answered[name] = 0
            return behaviour

    def reset(self, name: str) -> None:
        """Back to defaults; a function that exists only through configuration is gone (404)."""
        with self._lock:
            self._behaviours.pop(name, None)
            self._rngs.pop(name, None)
            self._answered.pop(name, None)

    def next_status(self, name: str, behaviour: Behaviour) -> int | None:
        """The next of ``behaviour.statuses`` this function answers, or None once they are used up."""
        with self._lock:
            answered = self._answered.get(name, 0)
            if answered >= len(behaviour.statuses):
                return None
            self._answered[name] = answered + 1
            return behaviour.statuses[answered]

    def injects_failure(self, name: str, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            rng = self._rngs.setdefault(name, random.Random(f"0:{name}"))
            return rng.random() < rate

    def describe(self) -> dict[str, Any]:
        with self._lock:
            names = sorted(set(self._handlers) | set(self._behaviours))
            return {
                name: {"handler": name in self._handlers, **self._behaviours.get(name, Behaviour()).public()}
                for name in names
            }
