"""Parsing of references: ``NAME``, ``NAME@N``, ``NAME@latest``, ``NAME@ALIAS``,
``NAME@<digest prefix>``."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from shipyard.errors import InvalidInputError, InvalidReferenceError
from shipyard.refs import NAME_PATTERN, Ref, Selector, parse_ref, validate_name

names = st.from_regex(rf"\A{NAME_PATTERN}\Z")
versions = st.integers(min_value=1, max_value=999_999_999)
hex_prefixes = st.text(alphabet="0123456789abcdef", min_size=6, max_size=64)
# Aliases are words: they start with a letter, and hex-looking words with a digit are taken
# as digest prefixes, so those are not aliases.
aliases = st.from_regex(r"\A[A-Za-z][A-Za-z0-9_-]{0,63}\Z").filter(
    lambda a: a != "latest" and not (re.fullmatch(r"[0-9a-f]{6,64}", a) and re.search(r"\d", a))
)
# Fuzz input: any text, with the characters references are made of drawn more often, plus
# the look-alikes that once slipped through (trailing newlines, non-ASCII digits).
fuzz_chars = st.one_of(
    st.characters(exclude_categories=("Cs",)),
    st.sampled_from("0123456789@:abcdef\n²٣"),
)
fuzz_text = st.text(fuzz_chars, max_size=80)


@given(names, versions)
def test_name_at_version_round_trips(name: str, version: int) -> None:
    """For any valid name and version, ``name@version`` parses and prints back unchanged."""
    ref = parse_ref(f"{name}@{version}")
    assert ref == Ref(name, Selector("version", str(version)))
    assert ref.version == version
    assert str(ref) == f"{name}@{version}"


@given(names)
def test_bare_name_means_latest(name: str) -> None:
    """A bare name selects the latest version, the same as ``name@latest``."""
    ref = parse_ref(name)
    assert ref.selector.kind == "latest"
    assert ref.version is None
    assert ref == parse_ref(f"{name}@latest")
    assert str(ref) == f"{name}@latest"


@given(names, aliases)
def test_word_selectors_are_aliases(name: str, alias: str) -> None:
    """A selector that is a word (not 'latest', not hex with a digit) is an alias."""
    ref = parse_ref(f"{name}@{alias}")
    assert ref.selector == Selector("alias", alias)
    assert str(ref) == f"{name}@{alias}"


@given(names, hex_prefixes)
def test_prefixed_digests_are_digest_selectors(name: str, hexpart: str) -> None:
    """``name@blake3:<6-64 hex digits>`` selects by digest prefix."""
    ref = parse_ref(f"{name}@blake3:{hexpart}")
    assert ref.selector == Selector("digest", hexpart)


@given(names, hex_prefixes)
@example("churn", "000001")
@example("churn", "abcdef")
def test_digest_selector_round_trips(name: str, hexpart: str) -> None:
    """Printing a digest-prefix reference gives text that parses back to the same reference."""
    ref = parse_ref(f"{name}@blake3:{hexpart}")
    assert parse_ref(str(ref)) == ref


@given(fuzz_text)
@example("churn\n")
@example("churn@²")
@example("churn@blake3:000001")
@example("churn@")
@example("@3")
@example("a@b@c")
def test_any_text_parses_or_raises_invalid_reference(text: str) -> None:
    """Any string either parses to a Ref with a valid name or raises InvalidReferenceError."""
    try:
        ref = parse_ref(text)
    except InvalidReferenceError as exc:
        assert repr(text) in str(exc) or not text
        return
    assert isinstance(ref, Ref)
    assert re.fullmatch(NAME_PATTERN, ref.name)
    assert parse_ref(str(ref)) == ref


@given(names, fuzz_text)
def test_any_selector_parses_or_raises_invalid_reference(name: str, selector: str) -> None:
    """Whatever follows a valid name and '@', parsing returns a Ref or raises
    InvalidReferenceError."""
    try:
        ref = parse_ref(f"{name}@{selector}")
    except InvalidReferenceError:
        return
    assert ref.name == name
    assert parse_ref(str(ref)) == ref


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("churn", "latest", ""),
        ("churn@latest", "latest", ""),
        ("churn@3", "version", "3"),
        ("churn@007", "version", "7"),
        ("churn@production", "alias", "production"),
        ("churn@deadbeef", "alias", "deadbeef"),
        ("churn@Latest", "alias", "Latest"),
        ("churn@abc123", "digest", "abc123"),
        ("churn@123456789", "version", "123456789"),
        ("churn@149045848374", "digest", "149045848374"),
        ("churn@0123456", "digest", "0123456"),
        ("churn@blake3:abcdef", "digest", "abcdef"),
        ("churn@blake3:" + "0" * 64, "digest", "0" * 64),
    ],
)
def test_selector_kinds(text: str, kind: str, value: str) -> None:
    """Numbers are versions, 'latest' is latest, words are aliases, hex with digits is a
    digest prefix, and so is a run of digits too long (or too zero-led) for a version."""
    assert parse_ref(text).selector == Selector(kind, value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty reference"),
        ("churn@", "expected NAME@N"),
        ("churn@0", "versions start at 1"),
        ("@3", "the name part ''"),
        ("-churn@1", "the name part '-churn'"),
        ("a@b@c", "expected NAME@N"),
        ("churn@blake3:abc", "6 to 64 lowercase hex digits"),
        ("churn@blake3:ABCDEF", "6 to 64 lowercase hex digits"),
        ("churn@blake3:" + "0" * 65, "6 to 64 lowercase hex digits"),
        ("churn@two words", "is not a version number"),
        ("x" * 129, "the name part"),
    ],
)
def test_invalid_references_explain_the_problem(text: str, message: str) -> None:
    """An invalid reference raises InvalidReferenceError saying what is wrong with it."""
    with pytest.raises(InvalidReferenceError, match=re.escape(message)):
        parse_ref(text)


def test_names_up_to_128_characters_are_valid() -> None:
    """Names are 1 to 128 characters of letters, digits, '.', '_' or '-'."""
    assert validate_name("a" * 128) == "a" * 128
    assert validate_name("churn_v2.1-final") == "churn_v2.1-final"
    with pytest.raises(InvalidInputError, match="at most 128 characters"):
        validate_name("a" * 129)


@pytest.mark.parametrize("bad", ["", "-x", ".x", "a b", "a/b", "a@b", "é"])
def test_invalid_names_name_the_offender(bad: str) -> None:
    """An invalid name raises InvalidInputError quoting the name and what it is."""
    with pytest.raises(InvalidInputError, match=re.escape(f"invalid dataset name {bad!r}")):
        validate_name(bad, "dataset name")


def test_superscript_digit_selector_is_an_invalid_reference() -> None:
    """A selector of non-ASCII digits is rejected as an invalid reference."""
    with pytest.raises(InvalidReferenceError):
        parse_ref("churn@²")


def test_non_ascii_digit_version_is_rejected() -> None:
    """Only ASCII digits make a version number."""
    with pytest.raises(InvalidReferenceError):
        parse_ref("churn@٣")


@pytest.mark.parametrize("text", ["churn\n", "churn@production\n", "churn@abc123\n"])
def test_trailing_newline_is_an_invalid_reference(text: str) -> None:
    """A reference with a trailing newline is rejected, not parsed into a name with a newline."""
    with pytest.raises(InvalidReferenceError):
        parse_ref(text)


def test_name_with_trailing_newline_is_invalid() -> None:
    """``validate_name`` rejects a name ending in a newline."""
    with pytest.raises(InvalidInputError):
        validate_name("churn\n", "dataset name")
