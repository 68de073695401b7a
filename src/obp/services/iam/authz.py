"""The authorization engine of DESIGN.md section 6: pure, no I/O.

A policy grants `actions` (`service.verb`, such as `kv.get`) on `resources` (`service:path`, such
as `kv:orders/42`) in its namespace; a policy of the `global` namespace marked
`namespace_independent` grants in every namespace. In actions and resources `*` matches any run
of characters (`/`, `.`, `:` and none at all included); every other character is literal, matching
is case-sensitive and covers the whole string.

`Authorizer` compiles an identity's effective grants once into indexes, so that a decision costs a
few hash lookups (and, for wildcard resources, a binary search) however many grants there are:

- per scope (a namespace, plus the namespace-independent grants that apply everywhere), the grants'
  action patterns map to the union of the resource patterns granted with them: a request is
  allowed when any action pattern matching its action carries a resource pattern matching its
  resource;
- exact patterns sit in dicts and sets; wildcard patterns are keyed by their literal prefix or
  suffix, found by a binary search among the sorted keys, and confirmed (unless the key alone
  decides, as for `kv:orders/*`) by one combined regex per key;
- the resource groups of recent (namespace, action) pairs are memoised (bounded, oldest out):
  finding them costs about 1 us, looking them up 50 ns. Decisions themselves are not memoised:
  resources vary far more than actions, and a decision is already a few hash lookups.
"""

from __future__ import annotations

import contextlib
import re
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Generic, TypeVar

from obp.kernel.errors import InvalidInput
from obp.kernel.names import GLOBAL_NAMESPACE

WILDCARD = "*"
ACTION_MAX_LENGTH = 128
RESOURCE_MAX_LENGTH = 512
# Compiling patterns runs on the event loop: bound what one pattern may cost.
MAX_WILDCARDS = 8
ACTION_FORM = (
    "lowercase 'service.verb': two or more words of a-z, 0-9, '_' or '-' separated by dots "
    "(such as 'kv.get' or 'iam.policy.create'), where '*' matches any run of characters "
    f"(such as 'kv.*' or '*.get'), or '*' alone; at most {ACTION_MAX_LENGTH} characters"
)
RESOURCE_FORM = (
    "'service:path' (such as 'kv:orders/42' or 'lambda:invoice-*'): service is a-z, 0-9, '_' "
    "or '-', or '*'; path is one or more printable characters, where '*' matches any run of "
    f"characters; or '*' alone; at most {RESOURCE_MAX_LENGTH} characters"
)
MEMO_SIZE = 4096
"""How many (namespace, action) pairs an `Authorizer` remembers the resource groups of."""

_ACTION_RE = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)+")
_ACTION_PATTERN_RE = re.compile(r"[a-z0-9_.*-]+")
_SERVICE_RE = re.compile(r"[a-z0-9_-]+|\*")
_STARS_RE = re.compile(r"\*{2,}")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Grant:
    """What one policy grants: `actions` on `resources`, scoped by `namespace`.

    `namespace_independent` takes effect only for grants of the `global` namespace.
    """

    namespace: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    namespace_independent: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one (namespace, action, resource) question."""

    allowed: bool
    action: str
    resource: str
    namespace: str


def _regex_source(pattern: str) -> str:
    """A regex for the glob `pattern`, matching whole strings, in linear time.

    Every middle segment is found at its leftmost place and kept there (an atomic group): for
    globs with only `*`, the leftmost place always leaves the most room to the rest, so no
    backtracking into it is needed, and patterns with many stars cannot blow up.
    """
    parts = _STARS_RE.sub(WILDCARD, pattern).split(WILDCARD)
    if len(parts) == 1:
        return rf"\A{re.escape(pattern)}\Z"
    middle = "".join(rf"(?>.*?{re.escape(part)})" for part in parts[1:-1])
    return rf"\A{re.escape(parts[0])}{middle}.*{re.escape(parts[-1])}\Z"


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The compiled regex of an action or resource pattern; it only ever matches whole strings.

    `*` matches any run of characters (newlines included); everything else is literal.
    """
    return re.compile(_regex_source(pattern), re.DOTALL)


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return compile_pattern(pattern)


def matches(pattern: str, value: str) -> bool:
    """Whether the action or resource `pattern` matches the whole of `value`."""
    if WILDCARD not in pattern:
        return pattern == value
    return _compiled(pattern).match(value) is not None


def _shown(value: str) -> str:
    return repr(value if len(value) <= 70 else value[:64] + "...")


def validate_action(value: str, *, loc: tuple[str | int, ...] = ("action",)) -> str:
    """Return `value` if it is an action or action pattern, else raise `InvalidInput`."""
    if value == WILDCARD:
        return value
    if len(value) > ACTION_MAX_LENGTH:
        problem = f"is {len(value)} characters long"
    elif value.count(WILDCARD) > MAX_WILDCARDS:
        problem = f"has more than {MAX_WILDCARDS} '*'"
    elif WILDCARD in value and not _ACTION_PATTERN_RE.fullmatch(value):
        problem = "is not a valid action pattern"
    elif WILDCARD not in value and not _ACTION_RE.fullmatch(value):
        problem = "is not a valid action"
    else:
        return value
    raise InvalidInput.field(loc, f"{_shown(value)} {problem}: use {ACTION_FORM}")


def validate_resource(value: str, *, loc: tuple[str | int, ...] = ("resource",)) -> str:
    """Return `value` if it is a resource or resource pattern, else raise `InvalidInput`."""
    if value == WILDCARD:
        return value
    service, colon, path = value.partition(":")
    if len(value) > RESOURCE_MAX_LENGTH:
        problem = f"is {len(value)} characters long"
    elif value.count(WILDCARD) > MAX_WILDCARDS:
        problem = f"has more than {MAX_WILDCARDS} '*'"
    elif not colon:
        problem = "has no ':' between service and path"
    elif not _SERVICE_RE.fullmatch(service):
        problem = f"has an invalid service {_shown(service)}"
    elif not path:
        problem = "has an empty path"
    elif not path.isprintable():
        problem = "has control or other non-printable characters in its path"
    else:
        return value
    raise InvalidInput.field(loc, f"{_shown(value)} {problem}: use {RESOURCE_FORM}")


class _Key(Generic[T]):
    """The wildcard patterns sharing one literal prefix (or suffix), and what they carry."""

    __slots__ = ("entries", "patterns", "pure", "regex")

    def __init__(self) -> None:
        # (regex, payload); regex None when the key alone decides (`prefix*`, `*suffix`).
        self.entries: list[tuple[re.Pattern[str] | None, T]] = []
        self.patterns: list[str] = []  # those that need their regex
        self.pure = False
        self.regex: re.Pattern[str] | None = None  # all of `patterns` in one, once sealed

    def add(self, pattern: str, payload: T, *, pure: bool) -> None:
        if pure:
            self.entries.append((None, payload))
            self.pure = True
        else:
            self.entries.append((compile_pattern(pattern), payload))
            self.patterns.append(pattern)

    def seal(self) -> None:
        """Compile the patterns that need a regex into one, unless the key alone decides."""
        if self.patterns and not self.pure:
            sources = "|".join(f"(?:{_regex_source(pattern)})" for pattern in self.patterns)
            self.regex = re.compile(sources, re.DOTALL)
        self.patterns = []

    def hit(self, value: str) -> bool:
        """Whether some pattern of this key matches `value` (which has the key)."""
        return self.pure or (self.regex is not None and self.regex.match(value) is not None)

    def payloads(self, value: str) -> list[T]:
        """What every pattern of this key that matches `value` carries."""
        return [
            payload
            for regex, payload in self.entries
            if regex is None or regex.match(value) is not None
        ]


class _Prefixes(Generic[T]):
    """Keys (literal prefixes), found by the prefixes of a value, in O(log n).

    Sorted, the keys that are prefixes of a value all are prefixes of the greatest key not
    greater than the value; each key links to its longest proper prefix among the keys, so
    following the links from that one visits every candidate. (For suffixes, the keys and the
    value are reversed.)
    """

    __slots__ = ("_keys", "_parents", "_texts")

    def __init__(self, keys: dict[str, _Key[T]]) -> None:
        self._texts = sorted(keys)
        self._keys = [keys[text] for text in self._texts]
        self._parents: list[int] = []
        ancestors: list[int] = []  # in sorted order, a key's prefixes come right before it
        for index, text in enumerate(self._texts):
            while ancestors and not text.startswith(self._texts[ancestors[-1]]):
                ancestors.pop()
            self._parents.append(ancestors[-1] if ancestors else -1)
            ancestors.append(index)

    def keys(self, probe: str) -> list[_Key[T]]:
        """The keys `probe` starts with, longest first."""
        texts, parents = self._texts, self._parents
        found = []
        index = bisect_right(texts, probe) - 1
        while index >= 0:
            if probe.startswith(texts[index]):
                found.append(self._keys[index])
            index = parents[index]
        return found

    def hit(self, probe: str, value: str) -> bool:
        """Whether a key `probe` starts with has a pattern that matches `value`."""
        texts, parents, keys = self._texts, self._parents, self._keys
        index = bisect_right(texts, probe) - 1
        while index >= 0:
            if probe.startswith(texts[index]) and keys[index].hit(value):
                return True
            index = parents[index]
        return False


class _Wildcards(Generic[T]):
    """Wildcard patterns, found by the literal prefix or suffix they must start or end with.

    Each pattern is keyed by the longer of its literal prefix and suffix. `prefix*` and
    `*suffix` (most wildcard patterns) match on the key alone; the patterns of a key that need
    more are confirmed by one combined regex. Patterns with neither (`*x*`) share one regex.
    """

    __slots__ = ("_anything", "_prefixes", "_rest", "_suffixes")

    def __init__(self, items: Iterable[tuple[str, T]]) -> None:
        self._anything: list[T] = []  # `*`: matches every value
        prefixes: dict[str, _Key[T]] = {}
        suffixes: dict[str, _Key[T]] = {}  # by the reversed suffix
        rest = _Key[T]()
        for pattern, payload in items:
            pattern = _STARS_RE.sub(WILDCARD, pattern)
            if pattern == WILDCARD:
                self._anything.append(payload)
                continue
            parts = pattern.split(WILDCARD)
            prefix, suffix = parts[0], parts[-1]
            if not prefix and not suffix:
                rest.add(pattern, payload, pure=False)
            elif len(prefix) >= len(suffix):
                key = prefixes.setdefault(prefix, _Key())
                key.add(pattern, payload, pure=len(parts) == 2 and not suffix)  # `prefix*`
            else:
                key = suffixes.setdefault(suffix[::-1], _Key())
                key.add(pattern, payload, pure=len(parts) == 2 and not prefix)  # `*suffix`
        for key in [*prefixes.values(), *suffixes.values(), rest]:
            key.seal()
        self._prefixes = _Prefixes(prefixes) if prefixes else None
        self._suffixes = _Prefixes(suffixes) if suffixes else None
        self._rest = rest if rest.entries else None

    def any(self, value: str) -> bool:
        """Whether some pattern matches `value`."""
        if self._anything:
            return True
        if self._prefixes is not None and self._prefixes.hit(value, value):
            return True
        if self._suffixes is not None and self._suffixes.hit(value[::-1], value):
            return True
        return self._rest is not None and self._rest.hit(value)

    def payloads(self, value: str) -> list[T]:
        """What every pattern matching `value` carries."""
        found = list(self._anything)
        keys = self._prefixes.keys(value) if self._prefixes is not None else []
        if self._suffixes is not None:
            keys.extend(self._suffixes.keys(value[::-1]))
        if self._rest is not None:
            keys.append(self._rest)
        for key in keys:
            found.extend(key.payloads(value))
        return found


class _Resources:
    """The resource patterns one action pattern is granted on, in one scope."""

    __slots__ = ("exact", "wildcards")

    def __init__(self, patterns: Iterable[str]) -> None:
        exact: set[str] = set()
        wildcards: dict[str, None] = {}
        for pattern in patterns:
            if WILDCARD in pattern:
                wildcards[pattern] = None
            else:
                exact.add(pattern)
        self.exact = frozenset(exact)
        self.wildcards = _Wildcards[None](wildcards.items()) if wildcards else None


class _Scope:
    """The grants that apply in one namespace (or in every namespace), by action pattern."""

    __slots__ = ("_exact", "_wildcards")

    def __init__(self, grants: Iterable[Grant]) -> None:
        by_action: dict[str, list[str]] = {}
        for grant in grants:
            for action in dict.fromkeys(grant.actions):
                by_action.setdefault(action, []).extend(grant.resources)
        self._exact = {
            action: _Resources(resources)
            for action, resources in by_action.items()
            if WILDCARD not in action
        }
        self._wildcards = _Wildcards(
            (action, _Resources(resources))
            for action, resources in by_action.items()
            if WILDCARD in action
        )

    def groups(self, action: str) -> list[_Resources]:
        """The resource groups of every action pattern that matches `action`."""
        found = self._wildcards.payloads(action)
        exact = self._exact.get(action)
        if exact is not None:
            found.insert(0, exact)
        return found


_NOWHERE = _Scope(())
_Group = tuple[frozenset[str], "_Wildcards[None] | None"]


class Authorizer:
    """An identity's effective grants, compiled once; answers decisions without scanning them."""

    __slots__ = ("_everywhere", "_memo", "_scopes", "grant_count")

    def __init__(self, grants: Iterable[Grant]) -> None:
        per_namespace: dict[str, list[Grant]] = {}
        everywhere: list[Grant] = []
        count = 0
        for grant in grants:
            count += 1
            if grant.namespace_independent and grant.namespace == GLOBAL_NAMESPACE:
                everywhere.append(grant)
            else:
                per_namespace.setdefault(grant.namespace, []).append(grant)
        self.grant_count = count
        self._scopes = {namespace: _Scope(group) for namespace, group in per_namespace.items()}
        self._everywhere = _Scope(everywhere)
        self._memo: dict[tuple[str, str], tuple[_Group, ...]] = {}

    def _groups(self, namespace: str, action: str) -> tuple[_Group, ...]:
        """(exact resources, wildcard resources) of every action pattern matching `action`."""
        scope = self._scopes.get(namespace, _NOWHERE)
        groups = (*scope.groups(action), *self._everywhere.groups(action))
        return tuple(
            (group.exact, group.wildcards)
            for group in groups
            if group.exact or group.wildcards is not None
        )

    def allows(self, *, namespace: str, action: str, resource: str) -> bool:
        """Whether some grant gives `action` on `resource` to a request in `namespace`."""
        key = (namespace, action)
        groups = self._memo.get(key)
        if groups is None:
            groups = self._groups(namespace, action)
            memo = self._memo
            if len(memo) >= MEMO_SIZE:
                # The oldest entry; another thread may have dropped it first.
                with contextlib.suppress(KeyError, RuntimeError):
                    memo.pop(next(iter(memo), key), None)
            memo[key] = groups
        for exact, wildcards in groups:
            if resource in exact or (wildcards is not None and wildcards.any(resource)):
                return True
        return False

    def decide(self, *, namespace: str, action: str, resource: str) -> Decision:
        """`allows`, with the question it answers."""
        allowed = self.allows(namespace=namespace, action=action, resource=resource)
        return Decision(allowed=allowed, action=action, resource=resource, namespace=namespace)
