"""Fault injection for the local session pool: Azure's failure modes, offline and on demand.

An agent that works against a healthy pool can still fall over against the real service, which
throttles (429 with ``Retry-After``), goes briefly unavailable (503), fails internally (500),
answers slowly, drops connections, deletes idle sessions (state lost) and refuses new sessions
when the pool is full (404). A :class:`FaultInjector` makes the local pool do all of that, either
at random with a fixed seed (so a failing run can be replayed) or on a deterministic schedule
("fail the next 3 executions with 429"), so that people can test their agents and clients
against those modes without an Azure subscription.

Wiring is one option of the pool::

    faults = FaultInjector.from_string("429=0.2,503=0.1,latency=200ms,seed=7")
    async with LocalSessionPool(faults=faults) as pool:
        ...

The pool's app runs the injector's middleware inside authentication, so calls that fail
authentication are never faulted (the pool answers them 401 as usual), and binds its session
deleter, through which the ``expire`` fault deletes sessions. The middleware picks calls by the
operation of the route the pool's app resolved for the request (``routing.py``); on another
aiohttp app it names the operation from the pool's route table, and ``expire`` needs a deleter
from :meth:`FaultInjector.bind_session_deleter` (without one it is counted as skipped).

String form (the ``--faults`` flag), comma-separated ``key=value`` items:

=================  ===========================================================================
``429=0.2``        answer 20% of matching calls with 429 and ``Retry-After``
``503=0.1``        answer with 503 ``ServiceUnavailable`` (with ``Retry-After``)
``500=0.05``       answer with 500 before the call reaches the pool (nothing ran)
``500_after=0.05`` let the call run, then answer 500 (the code ran; the caller cannot know)
``drop=0.05``      close the connection without answering, before the call reaches the pool
``drop_after=0.05`` let the call run, then close the connection without answering
``expire=0.05``    delete the session just before the call (the call then gets a fresh session)
``full=0.05``      answer a per-session call with 404 and the pool-full error body
``latency=200ms``  delay every matching call by this much (``ms`` or ``s``; bare number = seconds)
``jitter=100ms``   add a uniform random delay in ``[0, jitter]`` to every matching call
``retry_after=2``  the ``Retry-After`` value, in whole seconds (default 1)
``seed=7``         seed of the random generator (default 0), so runs replay exactly
``ops=execute+files``  only calls of these operations (``execute``, ``poll``, ``files``,
                   ``session``, ``list``, ``metadata``; default: all)
``next=429x3``     deterministic: the next 3 matching calls get 429 (may repeat:
                   ``next=429x2,next=drop_after``); scheduled faults go before random ones
=================  ===========================================================================
"""

from __future__ import annotations

import asyncio
import enum
import json
import random
import re
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .operations import Operation
from .routes import operation_of
from .routing import resolved_route

__all__ = [
    "POOL_FULL_ERROR_CODE",
    "Fault",
    "FaultInjector",
    "FaultPlan",
    "FaultPlanError",
    "FaultStats",
    "classify_operation",
]

POOL_FULL_ERROR_CODE = "SessionPoolFull"
"""The ``error.code`` of an injected pool-full 404 (the local pool's own pool-full code)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SessionDeleter = Callable[[str], Awaitable[object]]


def _operations(names: Iterable[Operation | str]) -> frozenset[Operation]:
    """The operations ``names`` name (members or their values); unknown names are refused."""
    by_value = {op.value: op for op in Operation}
    given = {str(name) for name in names}
    unknown = given - set(by_value)
    if unknown:
        raise FaultPlanError(f"unknown operation(s) {sorted(unknown)}; known: {sorted(by_value)}")
    return frozenset(by_value[name] for name in given)


class Fault(str, enum.Enum):
    """One failure mode the injector can produce."""

    THROTTLED = "429"
    """429 Too Many Requests with ``Retry-After``: safe for the caller to retry."""
    UNAVAILABLE = "503"
    """503 Service Unavailable with ``Retry-After``: safe for the caller to retry."""
    INTERNAL = "500"
    """500 before the call reaches the pool: nothing ran, but the caller cannot know that."""
    INTERNAL_AFTER = "500_after"
    """500 after the call ran: retrying an execution would run the code twice."""
    DROP = "drop"
    """The connection is closed without an answer before the call reaches the pool."""
    DROP_AFTER = "drop_after"
    """The call runs, then the connection is closed without an answer."""
    EXPIRE = "expire"
    """The session is deleted just before the call, as an idle session is on the real service."""
    POOL_FULL = "full"
    """404 with the pool-full error body, as the real service answers at ``maxConcurrentSessions``."""


class FaultPlanError(ValueError):
    """A fault plan string or value is not understood."""


@dataclass(frozen=True)
class FaultPlan:
    """What to inject, and how often. Immutable; build one with :meth:`parse` or directly."""

    rates: dict[Fault, float] = field(default_factory=dict)
    """Probability per matching call of each fault, each in ``[0, 1]``; together at most 1."""
    latency_seconds: float = 0.0
    """Fixed delay added to every matching call."""
    jitter_seconds: float = 0.0
    """Upper bound of a uniform random delay added to every matching call."""
    retry_after_seconds: int = 1
    """The ``Retry-After`` header value sent with 429 and 503."""
    seed: int = 0
    """Seed of the random generator, so a run with rates replays exactly."""
    operations: frozenset[Operation] | None = None
    """The operations faults apply to (see :func:`classify_operation`); ``None`` means all."""
    schedule: tuple[Fault, ...] = ()
    """Faults given, in order, to the next matching calls before any random choice."""

    def __post_init__(self) -> None:
        total = 0.0
        for fault, rate in self.rates.items():
            if not isinstance(fault, Fault):
                raise FaultPlanError(f"unknown fault {fault!r}")
            if not 0.0 <= rate <= 1.0:
                raise FaultPlanError(f"rate of {fault.value} must be within [0, 1], got {rate}")
            total += rate
        if total > 1.0 + 1e-9:
            raise FaultPlanError(f"fault rates add up to {total:g}, more than 1")
        if self.latency_seconds < 0 or self.jitter_seconds < 0:
            raise FaultPlanError("latency and jitter must not be negative")
        if self.retry_after_seconds < 0:
            raise FaultPlanError("retry_after must not be negative")
        if self.operations is not None:
            # Frozen: the normalised set is written once, here.
            object.__setattr__(self, "operations", _operations(self.operations))

    @classmethod
    def parse(cls, text: str) -> FaultPlan:
        """Build a plan from the ``--faults`` string form (see the module docstring)."""
        rates: dict[Fault, float] = {}
        latency = 0.0
        jitter = 0.0
        retry_after = 1
        seed = 0
        operations: frozenset[Operation] | None = None
        schedule: list[Fault] = []
        for raw_item in text.split(","):
            item = raw_item.strip()
            if not item:
                continue
            key, sep, value = item.partition("=")
            key = key.strip().lower()
            value = value.strip()
            if not sep or not value:
                raise FaultPlanError(f"expected key=value, got {item!r}")
            if key == "latency":
                latency = _parse_duration(value)
            elif key == "jitter":
                jitter = _parse_duration(value)
            elif key == "retry_after":
                retry_after = _parse_int(key, value)
            elif key == "seed":
                seed = _parse_int(key, value)
            elif key == "ops":
                operations = _operations(
                    op.strip().lower() for op in re.split(r"[+|/ ]", value) if op.strip()
                )
            elif key == "next":
                schedule.extend(_parse_schedule_item(value))
            else:
                fault = _parse_fault(key)
                try:
                    rate = float(value)
                except ValueError:
                    raise FaultPlanError(f"rate of {key} must be a number, got {value!r}") from None
                rates[fault] = rate
        return cls(
            rates=rates,
            latency_seconds=latency,
            jitter_seconds=jitter,
            retry_after_seconds=retry_after,
            seed=seed,
            operations=operations,
            schedule=tuple(schedule),
        )

    def describe(self) -> str:
        """The plan in the string form :meth:`parse` reads (round-trips)."""
        parts = [f"{fault.value}={rate:g}" for fault, rate in self.rates.items()]
        if self.latency_seconds:
            parts.append(f"latency={self.latency_seconds * 1000:g}ms")
        if self.jitter_seconds:
            parts.append(f"jitter={self.jitter_seconds * 1000:g}ms")
        if self.retry_after_seconds != 1:
            parts.append(f"retry_after={self.retry_after_seconds}")
        if self.operations is not None:
            parts.append("ops=" + "+".join(sorted(self.operations)))
        parts.extend(f"next={fault.value}" for fault in self.schedule)
        parts.append(f"seed={self.seed}")
        return ",".join(parts)


@dataclass
class FaultStats:
    """What the injector has done so far."""

    calls_seen: int = 0
    """Requests that went through the middleware."""
    calls_matched: int = 0
    """Requests whose operation the plan covers."""
    injected: Counter[str] = field(default_factory=Counter)
    """How many times each fault (by its string value) was injected."""
    skipped: Counter[str] = field(default_factory=Counter)
    """Faults chosen but not applicable to the call (``expire``/``full`` without an identifier,
    ``expire`` without a session deleter)."""
    delayed_seconds: float = 0.0
    """Total injected latency."""


def classify_operation(method: str, path: str) -> Operation:
    """Name the dynamic-sessions operation a request is, from its method and path.

    One of ``execute``, ``poll``, ``files``, ``session``, ``list``, ``metadata`` or ``other``: the
    operation of the pool's route that serves the call (see ``local/frontends/dataplane/app.py``).
    """
    return operation_of(method, path)


class FaultInjector:
    """Makes the local pool fail the way Azure does; use :attr:`middleware` in the pool's app.

    Thread-safety: meant for one event loop (the pool's). The schedule can be changed while the
    pool runs (tests call :meth:`schedule` between requests).
    """

    def __init__(self, plan: FaultPlan | str | None = None) -> None:
        if plan is None:
            plan = FaultPlan()
        elif isinstance(plan, str):
            plan = FaultPlan.parse(plan)
        self._plan = plan
        self._random = random.Random(plan.seed)
        self._schedule: deque[tuple[Fault, frozenset[Operation] | None]] = deque(
            (fault, plan.operations) for fault in plan.schedule
        )
        self._deleter: SessionDeleter | None = None
        self._enabled = True
        self.stats = FaultStats()
        """Counters of what was injected (read them in tests and at shutdown)."""

    @classmethod
    def from_string(cls, text: str) -> FaultInjector:
        """An injector for the ``--faults`` string form."""
        return cls(FaultPlan.parse(text))

    @property
    def plan(self) -> FaultPlan:
        """The plan in force."""
        return self._plan

    @property
    def enabled(self) -> bool:
        """Whether faults are injected; a disabled injector passes every call through."""
        return self._enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        self._enabled = value

    def replace_plan(self, plan: FaultPlan | str) -> None:
        """Put another plan in force on a running pool (its schedule replaces the pending one)."""
        if isinstance(plan, str):
            plan = FaultPlan.parse(plan)
        self._plan = plan
        self._random = random.Random(plan.seed)
        self._schedule = deque((fault, plan.operations) for fault in plan.schedule)

    def bind_session_deleter(self, deleter: SessionDeleter) -> None:
        """Give the injector the pool's ``delete(identifier)`` so ``expire`` can drop sessions."""
        self._deleter = deleter

    def schedule(
        self, fault: Fault | str, count: int = 1, *, operations: Iterable[Operation | str] | None = None
    ) -> None:
        """Give ``fault`` to the next ``count`` calls of ``operations`` (default: the plan's)."""
        fault = _parse_fault(fault.value if isinstance(fault, Fault) else fault)
        if count < 0:
            raise FaultPlanError("count must not be negative")
        ops = _operations(operations) if operations is not None else self._plan.operations
        for _ in range(count):
            self._schedule.append((fault, ops))

    def clear_schedule(self) -> None:
        """Forget every scheduled fault not yet given."""
        self._schedule.clear()

    @property
    def pending(self) -> int:
        """Scheduled faults not yet given."""
        return len(self._schedule)

    def _pick(self, operation: Operation) -> Fault | None:
        for index, (fault, ops) in enumerate(self._schedule):
            if ops is None or operation in ops:
                del self._schedule[index]
                return fault
        plan_ops = self._plan.operations
        if plan_ops is not None and operation not in plan_ops:
            return None
        if not self._plan.rates:
            return None
        draw = self._random.random()
        cumulative = 0.0
        for fault, rate in self._plan.rates.items():
            cumulative += rate
            if draw < cumulative:
                return fault
        return None

    def _matches(self, operation: Operation) -> bool:
        if any(ops is None or operation in ops for _, ops in self._schedule):
            return True
        return self._plan.operations is None or operation in self._plan.operations

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The aiohttp middleware; the pool installs it inside authentication (``faults=``).

        There calls that fail authentication never reach it (the pool answers 401, as Azure
        does before any throttling), so faults never hide an auth problem and an
        unauthenticated caller cannot make the injector delete a session.
        """
        self.stats.calls_seen += 1
        if not self._enabled:
            return await handler(request)
        # The pool's app resolved the route once; on another app it is named from the route table.
        resolved = resolved_route(request)
        operation = (
            resolved.operation if resolved is not None else classify_operation(request.method, request.path)
        )
        if not self._matches(operation):
            return await handler(request)
        self.stats.calls_matched += 1
        delay = self._plan.latency_seconds
        if self._plan.jitter_seconds:
            delay += self._random.uniform(0.0, self._plan.jitter_seconds)
        fault = self._pick(operation)
        if delay > 0:
            self.stats.delayed_seconds += delay
            await asyncio.sleep(delay)
        if fault is None:
            return await handler(request)
        identifier = resolved.identifier if resolved is not None else request.query.get("identifier")
        if fault in (Fault.THROTTLED, Fault.UNAVAILABLE, Fault.INTERNAL):
            self.stats.injected[fault.value] += 1
            return self._error_response(fault)
        if fault is Fault.POOL_FULL:
            if not identifier:
                self.stats.skipped[fault.value] += 1
                return await handler(request)
            self.stats.injected[fault.value] += 1
            return self._error_response(fault)
        if fault is Fault.DROP:
            self.stats.injected[fault.value] += 1
            return _drop(request)
        if fault is Fault.EXPIRE:
            deleter = self._deleter
            if not identifier or deleter is None:
                self.stats.skipped[fault.value] += 1
            else:
                await deleter(identifier)
                self.stats.injected[fault.value] += 1
            return await handler(request)
        response = await handler(request)
        if response.prepared:
            # A streamed response is already on the wire; cutting it now would be a truncated
            # body, not the "no answer" this fault promises.
            self.stats.skipped[fault.value] += 1
            return response
        self.stats.injected[fault.value] += 1
        if fault is Fault.DROP_AFTER:
            return _drop(request)
        return self._error_response(Fault.INTERNAL)

    def _error_response(self, fault: Fault) -> web.Response:
        status, code, message = _ERRORS[fault]
        headers = {"x-ms-error-code": code, "x-ms-fault-injected": fault.value}
        if fault in (Fault.THROTTLED, Fault.UNAVAILABLE):
            headers["Retry-After"] = str(self._plan.retry_after_seconds)
        body: dict[str, Any] = {
            "error": {
                "code": code,
                "message": message + " (injected by the local pool's fault plan)",
                "target": None,
                "details": [],
            }
        }
        return web.Response(
            status=status, text=json.dumps(body), content_type="application/json", headers=headers
        )


_ERRORS: dict[Fault, tuple[int, str, str]] = {
    Fault.THROTTLED: (429, "TooManyRequests", "Too many requests; retry after the Retry-After delay."),
    Fault.UNAVAILABLE: (503, "ServiceUnavailable", "The session pool is temporarily unavailable."),
    Fault.INTERNAL: (500, "InternalServerError", "The session pool failed to process the request."),
    Fault.INTERNAL_AFTER: (500, "InternalServerError", "The session pool failed to process the request."),
    Fault.POOL_FULL: (
        404,
        POOL_FULL_ERROR_CODE,
        "The session pool has reached its maximum number of concurrent sessions.",
    ),
}


def _drop(request: web.Request) -> web.Response:
    transport = request.transport
    if transport is not None:
        transport.close()
    # aiohttp needs a response object; with the transport closed nothing of it is sent.
    return web.Response(status=499)


def _parse_fault(text: str) -> Fault:
    key = text.strip().lower()
    aliases = {"throttle": "429", "unavailable": "503", "internal": "500", "pool_full": "full"}
    key = aliases.get(key, key)
    try:
        return Fault(key)
    except ValueError:
        known = ", ".join(f.value for f in Fault)
        raise FaultPlanError(f"unknown fault {text!r}; known: {known}") from None


def _parse_schedule_item(value: str) -> list[Fault]:
    name, sep, count_text = value.partition("x")
    # "500_after" contains no "x"; "drop_after" neither; so a split on the first "x" is safe.
    count = _parse_int("next", count_text) if sep else 1
    if count < 0:
        raise FaultPlanError("next=<fault>x<count> needs a non-negative count")
    return [_parse_fault(name)] * count


def _parse_int(key: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise FaultPlanError(f"{key} must be an integer, got {value!r}") from None


def _parse_duration(value: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*", value.lower())
    if match is None:
        raise FaultPlanError(f"expected a duration like 200ms or 1.5s, got {value!r}")
    number = float(match.group(1))
    return number / 1000.0 if match.group(2) == "ms" else number
