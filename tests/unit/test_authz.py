"""The authorization engine: `*` wildcards, literal everything else, namespace scope."""

from __future__ import annotations

import random
import re

import pytest

from obp.kernel.errors import InvalidInput
from obp.services.iam.authz import (
    ACTION_FORM,
    RESOURCE_FORM,
    Authorizer,
    Decision,
    Grant,
    compile_pattern,
    matches,
    validate_action,
    validate_resource,
)

NS = "acme"


def allows(grants: list[Grant], action: str, resource: str, namespace: str = NS) -> bool:
    return Authorizer(grants).allows(namespace=namespace, action=action, resource=resource)


def grant(actions: str | tuple[str, ...], resources: str | tuple[str, ...]) -> Grant:
    return Grant(
        namespace=NS,
        actions=(actions,) if isinstance(actions, str) else actions,
        resources=(resources,) if isinstance(resources, str) else resources,
    )


def test_an_exact_action_on_an_exact_resource_is_allowed() -> None:
    assert allows([grant("kv.get", "kv:orders/42")], "kv.get", "kv:orders/42")


def test_another_action_or_resource_is_denied() -> None:
    grants = [grant("kv.get", "kv:orders/42")]
    assert not allows(grants, "kv.set", "kv:orders/42")
    assert not allows(grants, "kv.get", "kv:orders/43")


def test_matching_is_case_sensitive() -> None:
    grants = [grant("kv.get", "kv:Orders/42")]
    assert not allows(grants, "kv.get", "kv:orders/42")
    assert not allows(grants, "KV.get", "kv:Orders/42")
    assert not matches("kv:a*", "KV:a")


def test_a_star_alone_matches_everything_including_the_empty_string() -> None:
    for value in ["", "*", "kv.get", "kv:orders/42", "a:b/c.d\ne", "x" * 600]:
        assert matches("*", value)
    assert allows([grant("*", "*")], "iam.policy.create", "iam:policies/root")
    assert allows([grant("**", "***")], "kv.get", "kv:x")


@pytest.mark.parametrize(
    ("pattern", "value"),
    [
        ("kv:orders/*", "kv:orders/42"),
        ("kv:orders/*", "kv:orders/"),
        ("kv:orders/*", "kv:orders/42/items/7"),
        ("kv:orders/*", "kv:orders/a:b.c"),
        ("lambda:invoice-*", "lambda:invoice-2024"),
        ("lambda:invoice-*", "lambda:invoice-"),
        ("*:orders/42", "kv:orders/42"),
        ("kv:*/42", "kv:orders/42"),
        ("kv:*/42", "kv:/42"),
        ("kv:a*b*c", "kv:abc"),
        ("kv:a*b*c", "kv:aXXbYYbc"),
        ("*.get", "kv.get"),
        ("*.get", "iam.policy.get"),
        ("kv.*", "kv.get"),
        ("kv.*", "kv.a.b"),
        ("iam.*.create", "iam.policy.create"),
        ("*", ""),
    ],
)
def test_a_wildcard_matches_any_run_of_characters(pattern: str, value: str) -> None:
    assert matches(pattern, value)
    assert compile_pattern(pattern).fullmatch(value)
    if ":" in pattern:
        assert allows([grant("kv.get", pattern)], "kv.get", value)
    else:
        assert allows([grant(pattern, "kv:x")], value, "kv:x")


@pytest.mark.parametrize(
    ("pattern", "value"),
    [
        ("kv:orders/*", "kv:order"),
        ("kv:orders/*", "kv:orders"),
        ("kv:orders/*", "files:orders/42"),
        ("lambda:invoice-*", "lambda:invoices"),
        ("lambda:invoice-*", "lambda:x-invoice-1"),
        ("kv:*/42", "kv:orders/420"),
        ("kv:a*b*c", "kv:acb"),
        ("kv:a*a", "kv:a"),
        ("*.get", "kv.gets"),
        ("*.get", "kvget"),
        ("kv.*", "kvx.get"),
        ("kv.*", "kv"),
        ("iam.*.create", "iam.create"),
    ],
)
def test_a_wildcard_does_not_match_what_its_literal_parts_exclude(pattern: str, value: str) -> None:
    assert not matches(pattern, value)
    assert not compile_pattern(pattern).fullmatch(value)
    if ":" in pattern:
        assert not allows([grant("*", pattern)], "kv.get", value)
    else:
        assert not allows([grant(pattern, "*")], value, "kv:x")


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("kv:a.b", "kv:aXb", False),
        ("kv:a.b", "kv:a.b", True),
        ("kv:(x)", "kv:(x)", True),
        ("kv:(x)", "kv:x", False),
        ("kv:[ab]", "kv:a", False),
        ("kv:[ab]", "kv:[ab]", True),
        ("kv:a+", "kv:aa", False),
        ("kv:a?", "kv:a", False),
        ("kv:^a$", "kv:^a$", True),
        ("kv:a|b", "kv:a", False),
        ("kv:a\\d", "kv:a\\d", True),
        ("kv:a\\d", "kv:a1", False),
        ("kv:{1}*", "kv:{1}x", True),
        ("kv.g.t", "kvXgXt", False),
    ],
)
def test_regex_metacharacters_are_literal(pattern: str, value: str, expected: bool) -> None:
    assert matches(pattern, value) is expected
    assert allows([grant("kv.get", pattern)], "kv.get", value) is expected


@pytest.mark.parametrize(
    ("pattern", "value"),
    [
        ("kv:orders/42", "kv:orders/421"),
        ("kv:orders/42", "xkv:orders/42"),
        ("kv:orders/42", "kv:orders/42\n"),
        ("kv:*/42", "kv:a/42/b"),
        ("kv.get", "kv.get.x"),
        ("*.get", "kv.get\n"),
    ],
)
def test_a_pattern_must_match_the_whole_string(pattern: str, value: str) -> None:
    assert not matches(pattern, value)
    regex = compile_pattern(pattern)
    assert regex.fullmatch(value) is None
    assert regex.match(value) is None  # anchored: even match() and search() cannot match a part
    assert regex.search(value) is None


def test_nested_and_neighbouring_prefixes_and_suffixes_are_all_found() -> None:
    authorizer = Authorizer(
        [
            grant("kv.get", ("kv:a*", "kv:ab/*x", "kv:ab/c*", "kv:b*", "*/z", "*y/z")),
            grant("kv.set", ("kv:ab/*x", "kv:ab/cd/*", "*.json", "*a.json")),
        ]
    )

    def wrong(action: str, resources: list[str], expected: bool) -> list[str]:
        return [
            resource
            for resource in resources
            if authorizer.allows(namespace=NS, action=action, resource=resource) is not expected
        ]

    assert wrong("kv.get", ["kv:a", "kv:ab/cd", "kv:azzz", "kv:b", "q/z", "y/z"], True) == []
    assert wrong("kv.get", ["kv:", "kv:c", "files:a", "z"], False) == []
    assert wrong("kv.set", ["kv:ab/x", "kv:ab/cd/e", "kv:ab/q.x", "files:x.json"], True) == []
    assert wrong("kv.set", ["kv:ab/", "kv:ab/cd", "kv:ab/ce/f", "json", "a.jso"], False) == []


def test_a_star_matches_newlines_and_every_other_character() -> None:
    assert matches("kv:a*b", "kv:a\n\t/.:*b")


def test_many_stars_do_not_backtrack_catastrophically() -> None:
    pattern = "kv:" + "*a" * 30 + "*b"
    assert not matches(pattern, "kv:" + "a" * 500)
    assert matches(pattern, "kv:" + "a" * 500 + "b")
    assert not allows([grant("kv.get", pattern)], "kv.get", "kv:" + "a" * 500)


def test_a_policy_of_one_namespace_does_not_grant_in_another() -> None:
    authorizer = Authorizer([Grant("a", ("*",), ("*",))])
    assert authorizer.allows(namespace="a", action="kv.get", resource="kv:x")
    assert not authorizer.allows(namespace="b", action="kv.get", resource="kv:x")
    assert not authorizer.allows(namespace="global", action="kv.get", resource="kv:x")


def test_a_global_policy_not_marked_independent_grants_only_in_global() -> None:
    authorizer = Authorizer([Grant("global", ("*",), ("*",))])
    assert authorizer.allows(namespace="global", action="kv.get", resource="kv:x")
    assert not authorizer.allows(namespace="a", action="kv.get", resource="kv:x")


def test_a_global_namespace_independent_policy_grants_in_every_namespace() -> None:
    authorizer = Authorizer([Grant("global", ("kv.*",), ("kv:*",), namespace_independent=True)])
    for namespace in ["global", "a", "b", "system"]:
        assert authorizer.allows(namespace=namespace, action="kv.get", resource="kv:x")
        assert not authorizer.allows(namespace=namespace, action="files.read", resource="kv:x")


def test_namespace_independent_means_nothing_outside_the_global_namespace() -> None:
    authorizer = Authorizer([Grant("a", ("*",), ("*",), namespace_independent=True)])
    assert authorizer.allows(namespace="a", action="kv.get", resource="kv:x")
    assert not authorizer.allows(namespace="b", action="kv.get", resource="kv:x")


def test_grants_are_a_union_but_each_pairs_only_its_own_actions_and_resources() -> None:
    grants = [grant("kv.get", "kv:a/*"), grant(("files.read", "files.list"), "files:reports/*")]
    assert allows(grants, "kv.get", "kv:a/1")
    assert allows(grants, "files.read", "files:reports/q3.pdf")
    assert allows(grants, "files.list", "files:reports/")
    assert not allows(grants, "kv.get", "files:reports/q3.pdf")
    assert not allows(grants, "files.read", "kv:a/1")


def test_grants_of_a_namespace_and_global_independent_grants_combine() -> None:
    authorizer = Authorizer(
        [
            Grant("a", ("kv.get",), ("kv:x",)),
            Grant("global", ("kv.set",), ("kv:x",), namespace_independent=True),
            Grant("global", ("kv.delete",), ("kv:x",)),
        ]
    )
    assert authorizer.allows(namespace="a", action="kv.get", resource="kv:x")
    assert authorizer.allows(namespace="a", action="kv.set", resource="kv:x")
    assert not authorizer.allows(namespace="a", action="kv.delete", resource="kv:x")
    assert authorizer.allows(namespace="global", action="kv.delete", resource="kv:x")
    assert not authorizer.allows(namespace="global", action="kv.get", resource="kv:x")


def test_no_grants_deny_everything() -> None:
    authorizer = Authorizer([])
    assert authorizer.grant_count == 0
    assert not authorizer.allows(namespace=NS, action="kv.get", resource="kv:x")
    assert not authorizer.allows(namespace="global", action="*", resource="*")


def test_a_grant_without_actions_or_resources_grants_nothing() -> None:
    assert not allows([grant((), "*"), grant("*", ())], "kv.get", "kv:x")


def test_decide_returns_the_question_with_the_answer() -> None:
    authorizer = Authorizer([grant("kv.get", "kv:x")])
    assert authorizer.decide(namespace=NS, action="kv.get", resource="kv:x") == Decision(
        allowed=True, action="kv.get", resource="kv:x", namespace=NS
    )
    denied = authorizer.decide(namespace=NS, action="kv.set", resource="kv:x")
    assert not denied.allowed
    assert (denied.action, denied.resource, denied.namespace) == ("kv.set", "kv:x", NS)


def test_repeated_decisions_give_the_same_answers_after_the_memo_overflows() -> None:
    authorizer = Authorizer([grant("kv.*", "kv:*")])
    for round_ in range(2):
        for n in range(5000):
            assert authorizer.allows(namespace=NS, action=f"kv.v{n}", resource="kv:x"), round_
            assert not authorizer.allows(namespace=NS, action=f"files.v{n}", resource="kv:x")


@pytest.mark.parametrize(
    "value", ["*", "kv.get", "iam.policy.create", "a_b.c-d", "kv.*", "*.get", "iam.*.create", "*.*"]
)
def test_valid_actions_are_returned(value: str) -> None:
    assert validate_action(value, loc=("actions", 0)) == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "kv",
        "KV.get",
        "kv.",
        ".get",
        "kv..get",
        "kv get",
        "kv:get",
        "kv.gét",
        "kv.get\n",
        "kv.(*)",
        "k" * 60 + "." + "v" * 68,
    ],
)
def test_invalid_actions_name_the_field_and_the_accepted_form(value: str) -> None:
    with pytest.raises(InvalidInput) as error:
        validate_action(value, loc=("actions", 3))
    assert error.value.errors[0].loc == ("actions", 3)
    assert ACTION_FORM in error.value.errors[0].msg
    assert "service.verb" in error.value.errors[0].msg
    assert error.value.detail.startswith("actions.3: ")


@pytest.mark.parametrize(
    "value",
    [
        "*",
        "kv:orders/42",
        "lambda:invoice-*",
        "*:orders/*",
        "kv:*",
        "kv:a:b",
        "files:reports/Q3 2024 (final).pdf",
        "kv:日本/ü",
        "kv:" + "x" * 509,
    ],
)
def test_valid_resources_are_returned(value: str) -> None:
    assert validate_resource(value, loc=("resources", 0)) == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "kv",
        "kv:",
        ":orders",
        "KV:orders",
        "k*:orders",
        "kv orders:x",
        "kv:a\nb",
        "kv:a\x00b",
        "kv:a\tb",
        "kv:" + "x" * 510,
        "orders/*",
    ],
)
def test_invalid_resources_name_the_field_and_the_accepted_form(value: str) -> None:
    with pytest.raises(InvalidInput) as error:
        validate_resource(value, loc=("resources", 3))
    assert error.value.errors[0].loc == ("resources", 3)
    assert RESOURCE_FORM in error.value.errors[0].msg
    assert "service:path" in error.value.errors[0].msg
    assert error.value.detail.startswith("resources.3: ")


def test_validation_defaults_to_the_singular_field_names() -> None:
    with pytest.raises(InvalidInput) as action_error:
        validate_action("nope")
    with pytest.raises(InvalidInput) as resource_error:
        validate_resource("nope")
    assert action_error.value.errors[0].loc == ("action",)
    assert resource_error.value.errors[0].loc == ("resource",)


# The index against a scan of every grant with the plainest regex, on random grants and questions.

ALPHABET = "ab.:/*"
NAMESPACES = ("a", "b", "global")


def naive_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def naive_allows(grants: list[Grant], namespace: str, action: str, resource: str) -> bool:
    for candidate in grants:
        applies = candidate.namespace == namespace or (
            candidate.namespace == "global" and candidate.namespace_independent
        )
        if (
            applies
            and any(naive_regex(p).fullmatch(action) for p in candidate.actions)
            and any(naive_regex(p).fullmatch(resource) for p in candidate.resources)
        ):
            return True
    return False


def random_text(rng: random.Random, alphabet: str, longest: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, longest)))


def random_pattern(rng: random.Random) -> str:
    if rng.random() < 0.05:
        return "*"
    return random_text(rng, ALPHABET, 7)


def random_grant(rng: random.Random) -> Grant:
    return Grant(
        namespace=rng.choice(NAMESPACES),
        actions=tuple(random_pattern(rng) for _ in range(rng.randint(1, 3))),
        resources=tuple(random_pattern(rng) for _ in range(rng.randint(1, 3))),
        namespace_independent=rng.random() < 0.3,
    )


def test_random_patterns_match_exactly_what_the_plain_regex_matches() -> None:
    rng = random.Random(7)
    checked = matched = 0
    for _ in range(600):
        pattern = random_pattern(rng)
        naive = naive_regex(pattern)
        compiled = compile_pattern(pattern)
        for _ in range(20):
            value = random_text(rng, "ab.:/", 9)
            expected = naive.fullmatch(value) is not None
            assert (compiled.match(value) is not None) is expected, (pattern, value)
            assert matches(pattern, value) is expected, (pattern, value)
            checked += 1
            matched += expected
    assert 0.05 * checked < matched < 0.95 * checked  # both answers were exercised


@pytest.mark.parametrize("grant_count", [1, 5, 40, 300])
def test_the_index_decides_like_a_scan_of_every_grant(grant_count: int) -> None:
    rng = random.Random(7 + grant_count)
    allowed = 0
    for _ in range(10):
        grants = [random_grant(rng) for _ in range(grant_count)]
        authorizer = Authorizer(grants)
        for _ in range(60):
            namespace = rng.choice((*NAMESPACES, "c"))
            action = random_text(rng, "ab.:/", 6)
            resource = random_text(rng, "ab.:/", 6)
            expected = naive_allows(grants, namespace, action, resource)
            got = authorizer.allows(namespace=namespace, action=action, resource=resource)
            assert got is expected, (grants, namespace, action, resource)
            allowed += expected
    assert 0 < allowed < 600
