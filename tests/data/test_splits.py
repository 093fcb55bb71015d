"""Reproducible splits: the spec, and how split_frame assigns rows to parts for each method."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from datetime import date, datetime
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipyard._internal.hashing import digest_bytes
from shipyard.data.splits import (
    SplitSpec,
    assign_parts,
    hash_unit,
    parse_fractions,
    split_frame,
)
from shipyard.errors import InvalidInputError

THREE = {"train": 0.7, "valid": 0.15, "test": 0.15}


def customers(n: int, start: int = 0, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "customer_id": [f"cust-{i:06d}" for i in range(start, start + n)],
            "label": rng.choice(["no", "yes", "maybe"], size=n, p=[0.85, 0.1, 0.05]),
            "x": rng.normal(size=n),
        }
    )


def parquet_bytes(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.write_parquet(buf)
    return buf.getvalue()


def part_digests(parts: dict[str, pl.DataFrame]) -> dict[str, str]:
    return {name: digest_bytes(parquet_bytes(frame)) for name, frame in parts.items()}


SPECS = {
    "hash": SplitSpec(THREE, key="customer_id", seed=3),
    "stratified": SplitSpec(THREE, stratify="label", seed=3),
    "random": SplitSpec(THREE, seed=3),
}


# -- the spec ---------------------------------------------------------------------------------


def test_method_follows_the_fields() -> None:
    """The method is hash with a key, stratified with stratify, time with a time column."""
    assert SPECS["hash"].method == "hash"
    assert SPECS["stratified"].method == "stratified"
    assert SPECS["random"].method == "random"
    assert SplitSpec(THREE, time_column="ts").method == "time"
    assert SPECS["hash"].parts == ["train", "valid", "test"]


@pytest.mark.parametrize(
    "spec",
    [
        *SPECS.values(),
        SplitSpec(THREE, time_column="ts"),
        SplitSpec(
            {"past": 0, "recent": 0, "now": 0},
            time_column="ts",
            cutoffs=["2024-01-01", "2025-01-01T06:00"],
        ),
    ],
    ids=["hash", "stratified", "random", "time", "time-cutoffs"],
)
def test_spec_documents_round_trip_through_json(spec: SplitSpec) -> None:
    """from_dict(to_dict()) gives an equal spec, also after a JSON round trip."""
    doc = spec.to_dict()
    assert doc["method"] == spec.method
    assert SplitSpec.from_dict(json.loads(json.dumps(doc))) == spec
    assert list(SplitSpec.from_dict(doc).fractions) == list(spec.fractions)


def test_from_dict_needs_fractions_and_known_keys() -> None:
    """A document without fractions or with unknown keys is refused with both problems."""
    with pytest.raises(InvalidInputError) as info:
        SplitSpec.from_dict({"keys": "id"})
    assert info.value.details["problems"] == [
        "keys: unknown key; expected method, fractions, parts, key, stratify, seed, "
        "time_column, cutoffs",
        "fractions: missing, e.g. {train: 0.8, test: 0.2}",
    ]


def test_a_time_split_with_cutoffs_keeps_only_what_it_applies() -> None:
    """Cutoffs decide the parts, so the shares given are not kept: the document names the
    parts instead, reads back equal, and two specs that differ only in unused shares are one."""
    given = SplitSpec({"train": 0.5, "test": 0.5}, time_column="ts", cutoffs=["2026-01-10"])
    doc = given.to_dict()
    assert doc["parts"] == ["train", "test"] and "fractions" not in doc
    assert SplitSpec.from_dict(json.loads(json.dumps(doc))) == given
    assert given == SplitSpec({"train": 0.9, "test": 0.1}, time_column="ts", cutoffs=["2026-01-10"])
    assert given.describe() == "by ts at 2026-01-10 into train, test"
    # A document stored before keeps its fractions and still reads.
    old = {**doc, "fractions": {"train": 0.5, "test": 0.5}}
    del old["parts"]
    assert SplitSpec.from_dict(old) == given


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"parts": ["a", "b"]}, "only a time split with cutoffs names its parts alone"),
        (
            {"parts": ["a", "b"], "fractions": {"a": 0.5, "b": 0.5}, "time_column": "ts",
             "cutoffs": ["2024-01-01"]},
            "give fractions or parts, not both",
        ),
        ({"parts": ["a", "a"], "time_column": "ts", "cutoffs": ["2024-01-01"]},
         "parts: a named more than once"),
        ({"parts": "a,b", "time_column": "ts", "cutoffs": ["2024-01-01"]},
         "parts: expected a list of part names"),
    ],
)  # fmt: skip
def test_parts_in_a_document_are_checked(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        SplitSpec.from_dict(doc)


def test_cutoff_counts_read_as_words() -> None:
    """'2 parts need 1 cutoff', not '1 cutoffs'."""
    with pytest.raises(InvalidInputError, match="cutoffs: 2 parts need 1 cutoff, got 2"):
        SplitSpec({"a": 0, "b": 0}, time_column="ts", cutoffs=["2024-01-01", "2024-02-01"])


def test_from_dict_checks_the_method_against_the_fields() -> None:
    """A document whose method contradicts its fields is refused."""
    with pytest.raises(InvalidInputError, match=r"says method 'random' but .* 'hash' split"):
        SplitSpec.from_dict({"method": "random", "fractions": THREE, "key": "id"})


@pytest.mark.parametrize(
    ("fractions", "message"),
    [
        ({"train": 0.7, "test": 0.2}, "fractions: must sum to 1, got 0.9"),
        ({"train": 70, "test": 30}, "write 0.7, not 70"),
        ({"train": 1.2, "test": -0.2}, "fractions.test: must be positive, got -0.2"),
        ({"train": 1.0, "test": 0.0}, "fractions.test: must be positive, got 0.0"),
        ({"train": "0.5", "test": 0.5}, "fractions.train: '0.5' is not a finite number"),
        ({"train": float("nan"), "test": 0.5}, "is not a finite number"),
        ({"train": True, "test": 0.5}, "True is not a finite number"),
        ({"all": 1.0}, "at least two parts"),
        ({"my part": 0.5, "test": 0.5}, "part name 'my part' must use letters"),
        ({"train\n": 0.5, "test": 0.5}, "part name 'train\\n' must use letters"),
        ([0.5, 0.5], "expected a mapping of part name to share"),
    ],
)
def test_invalid_fractions_are_explained(fractions: Any, message: str) -> None:
    """Fractions must be named, positive, finite and sum to 1; the message says which rule."""
    with pytest.raises(InvalidInputError) as info:
        SplitSpec(fractions)
    assert message in str(info.value)


def test_fractions_sum_tolerance_is_1e_9() -> None:
    """Sums within 1e-9 of 1 are accepted; further off is refused."""
    SplitSpec({"a": 0.7, "b": 0.3 + 5e-10})
    with pytest.raises(InvalidInputError, match="must sum to 1"):
        SplitSpec({"a": 0.7, "b": 0.3 + 5e-9})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"key": "id", "stratify": "y"}, "key and stratify cannot be combined"),
        ({"time_column": "ts", "key": "id"}, "time_column cannot be combined"),
        ({"cutoffs": ["2024-01-01", "2024-06-01"]}, "cutoffs: need a time_column"),
        ({"time_column": "ts", "cutoffs": ["2024-01-01"]}, "3 parts need 2 cutoffs, got 1"),
        ({"time_column": "ts", "cutoffs": ["2024-06-01", "2024-01-01"]}, "strictly increasing"),
        ({"time_column": "ts", "cutoffs": ["2024-01-01", "2024-01-01"]}, "strictly increasing"),
        ({"time_column": "ts", "cutoffs": ["2024-01-01", "June"]}, "cutoffs[1]: 'June' is not"),
        (
            {"time_column": "ts", "cutoffs": ["2024-01-01", "2024-06-01T00:00+02:00"]},
            "mix values with and without a time zone",
        ),
        ({"seed": -1}, "seed: -1 is outside"),
        ({"seed": 1.5}, "seed: expected an integer"),
        ({"key": ""}, "key: expected a column name"),
    ],
)
def test_invalid_combinations_are_explained(fields: dict[str, Any], message: str) -> None:
    """Unsupported combinations and malformed fields are refused with a clear reason."""
    with pytest.raises(InvalidInputError) as info:
        SplitSpec(THREE, **fields)
    assert message in str(info.value)


def test_spec_problems_are_gathered() -> None:
    """Several problems in one spec are reported together."""
    with pytest.raises(InvalidInputError) as info:
        SplitSpec({"train": 0.5, "test": 0.4}, key="id", stratify="y", seed=-3)
    assert str(info.value).startswith("3 problems in split spec: ")


def test_parse_fractions() -> None:
    """``train=0.7,valid=0.15,test=0.15`` parses in order; spaces are allowed."""
    assert parse_fractions("train=0.7,valid=0.15,test=0.15") == THREE
    assert list(parse_fractions(" test = 0.2 , train=0.8")) == ["test", "train"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("train=0.7,test", "'test' is not NAME=FRACTION"),
        ("train=0.7,=0.3", "'=0.3' is not NAME=FRACTION"),
        ("train=seventy,test=0.3", "train: 'seventy' is not a number"),
        ("train=0.5,train=0.5", "train: given twice"),
        ("", "fractions: empty"),
    ],
)
def test_parse_fractions_errors(text: str, message: str) -> None:
    """Malformed fraction lists name the bad item and show the expected form."""
    with pytest.raises(InvalidInputError) as info:
        parse_fractions(text)
    assert message in str(info.value)


# -- applying a spec: errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "role"),
    [
        (SplitSpec(THREE, key="customer"), "key"),
        (SplitSpec(THREE, stratify="y"), "stratify"),
        (SplitSpec(THREE, time_column="when"), "time_column"),
    ],
)
def test_unknown_columns_are_named_with_the_available_ones(spec: SplitSpec, role: str) -> None:
    """A column missing from the data is named, with its role and the columns there are."""
    with pytest.raises(InvalidInputError) as info:
        split_frame(customers(5), spec)
    column = getattr(spec, role)
    assert str(info.value) == (
        f"column {column!r} ({role}) is not in the data; available columns: customer_id, label, x"
    )


def test_null_keys_are_refused_with_their_count() -> None:
    """Rows without a key cannot be placed for ever, so they are an error naming the column."""
    df = pl.DataFrame({"id": ["a", None, "c", None]})
    with pytest.raises(InvalidInputError, match="key column 'id' has 2 null values of 4 rows"):
        split_frame(df, SplitSpec(THREE, key="id"))


def test_keys_without_a_text_form_are_refused() -> None:
    """A list column cannot be hashed as a key; the message says which types work."""
    df = pl.DataFrame({"id": [[1], [2]]})
    with pytest.raises(InvalidInputError, match=r"has type List.*use an integer or string key"):
        split_frame(df, SplitSpec(THREE, key="id"))


def test_null_times_are_refused() -> None:
    """Rows without a time cannot be placed before or after a cutoff."""
    df = pl.DataFrame({"ts": [date(2024, 1, 1), None]})
    with pytest.raises(InvalidInputError, match="time_column column 'ts' has 1 null value "):
        split_frame(df, SplitSpec({"a": 0, "b": 0}, time_column="ts", cutoffs=["2024-01-02"]))


def test_time_column_must_be_temporal() -> None:
    """A text column cannot be split by time; the message says how to parse it."""
    df = pl.DataFrame({"ts": ["2024-01-01"]})
    with pytest.raises(InvalidInputError, match="has type String; a time split needs a Date"):
        split_frame(df, SplitSpec(THREE, time_column="ts"))


# -- determinism ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", list(SPECS))
def test_same_spec_and_data_give_identical_parts_and_bytes(method: str) -> None:
    """Splitting twice gives equal frames and byte-identical Parquet files."""
    df = customers(2_000)
    first = split_frame(df, SPECS[method])
    second = split_frame(df.clone(), SPECS[method])
    assert list(first) == ["train", "valid", "test"]
    for name in first:
        assert first[name].equals(second[name])
    assert part_digests(first) == part_digests(second)


def test_parts_are_identical_in_a_fresh_process() -> None:
    """A new interpreter with another hash salt produces the same Parquet bytes."""
    script = textwrap.dedent(
        """
        import io, json, sys
        import numpy as np, polars as pl
        from shipyard._internal.hashing import digest_bytes
        from shipyard.data.splits import SplitSpec, split_frame

        rng = np.random.default_rng(0)
        n = 2_000
        df = pl.DataFrame({
            "customer_id": [f"cust-{i:06d}" for i in range(n)],
            "label": rng.choice(["no", "yes", "maybe"], size=n, p=[0.85, 0.1, 0.05]),
            "x": rng.normal(size=n),
        })
        out = {}
        for method, spec in [
            ("hash", SplitSpec(json.loads(sys.argv[1]), key="customer_id", seed=3)),
            ("stratified", SplitSpec(json.loads(sys.argv[1]), stratify="label", seed=3)),
            ("random", SplitSpec(json.loads(sys.argv[1]), seed=3)),
        ]:
            digests = {}
            for name, part in split_frame(df, spec).items():
                buf = io.BytesIO()
                part.write_parquet(buf)
                digests[name] = digest_bytes(buf.getvalue())
            out[method] = digests
        print(json.dumps(out))
        """
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(THREE)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    there = json.loads(result.stdout)
    here = {
        method: part_digests(split_frame(customers(2_000), spec)) for method, spec in SPECS.items()
    }
    assert there == here


def test_hash_values_are_pinned() -> None:
    """The documented key hash gives these exact numbers, on any machine and in any process."""
    units = hash_unit(pl.Series(["1", "2", "", "héllo ✓"]), seed=0)
    assert units.tolist() == [
        0.3217227985246791,
        0.8852993232704203,
        0.09811138081077908,
        0.8788018387786165,
    ]
    assert hash_unit(pl.Series([1, 2]), seed=0).tolist() == units[:2].tolist()


def reference_unit(text: str, seed: int) -> float:
    """The hash of hash_unit's docstring, one value at a time in plain Python."""
    h = 0xCBF29CE484222325
    for byte in f"{seed}:{text}".encode():
        h = ((h ^ byte) * 0x100000001B3) % 2**64
    for multiplier in (0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53):
        h ^= h >> 33
        h = (h * multiplier) % 2**64
    h ^= h >> 33
    return (h >> 11) / 2**53


@given(st.lists(st.text(max_size=40), max_size=30), st.integers(0, 2**64 - 1))
def test_vectorised_hash_matches_its_definition(keys: list[str], seed: int) -> None:
    """For any strings and seed, hash_unit equals the documented per-value definition."""
    got = hash_unit(pl.Series(keys, dtype=pl.String), seed).tolist()
    assert got == [reference_unit(k, seed) for k in keys]


@pytest.mark.parametrize("method", list(SPECS))
def test_a_different_seed_gives_a_different_assignment(method: str) -> None:
    """Changing the seed reassigns rows (while part sizes stay the same for exact methods)."""
    df = customers(2_000)
    spec = SPECS[method]
    other = SplitSpec.from_dict({**spec.to_dict(), "seed": spec.seed + 1})
    a, b = assign_parts(df, spec), assign_parts(df, other)
    assert (a != b).sum() > 500
    if method != "hash":
        assert a.value_counts().sort("part").equals(b.value_counts().sort("part"))


# -- hash (key) splits ------------------------------------------------------------------------


def test_appending_rows_never_moves_existing_rows() -> None:
    """After appending 20% new rows, every old row is still in the same part."""
    old = customers(5_000)
    grown = pl.concat([old, customers(1_000, start=5_000, seed=1)])
    before = split_frame(old, SPECS["hash"])
    after = split_frame(grown, SPECS["hash"])
    for name in before:
        old_ids = set(before[name]["customer_id"])
        assert old_ids <= set(after[name]["customer_id"])
        assert after[name].height >= before[name].height


def test_rows_sharing_a_key_share_a_part() -> None:
    """All rows of one key land in the same part, wherever they are in the table."""
    df = pl.DataFrame({"user": [i % 50 for i in range(1_000)], "event": range(1_000)})
    parts = assign_parts(df, SplitSpec(THREE, key="user"))
    per_user = df.with_columns(parts).group_by("user").agg(pl.col("part").n_unique())
    assert per_user["part"].max() == 1


def test_hash_split_shares_are_close_to_the_fractions() -> None:
    """On 100,000 keys each part's share is within one percentage point of its fraction."""
    df = pl.DataFrame({"id": range(100_000)})
    parts = split_frame(df, SplitSpec(THREE, key="id", seed=11))
    for name, fraction in THREE.items():
        assert abs(parts[name].height / 100_000 - fraction) < 0.01


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    old=st.lists(st.text(min_size=1, max_size=12) | st.integers().map(str), max_size=60),
    new=st.lists(st.text(min_size=1, max_size=12), max_size=30),
    seed=st.integers(0, 1_000),
)
def test_key_assignment_is_stable_under_appends(old: list[str], new: list[str], seed: int) -> None:
    """For any keys, appending rows leaves the part of every existing row unchanged."""
    spec = SplitSpec(THREE, key="k", seed=seed)
    before = assign_parts(pl.DataFrame({"k": old}, schema={"k": pl.String}), spec)
    after = assign_parts(pl.DataFrame({"k": old + new}, schema={"k": pl.String}), spec)
    assert before.to_list() == after.head(len(old)).to_list()


# -- stratified and random splits ---------------------------------------------------------------


def test_stratified_parts_keep_class_shares_within_one_point() -> None:
    """On 10,000 rows with rare classes, every part has each class's overall share ±1 point."""
    df = customers(10_000, seed=5)
    overall = df["label"].value_counts(normalize=True)
    shares = dict(zip(overall["label"], overall["proportion"], strict=True))
    for name, part in split_frame(df, SPECS["stratified"]).items():
        counts = part["label"].value_counts(normalize=True)
        for label, share in zip(counts["label"], counts["proportion"], strict=True):
            assert abs(share - shares[label]) < 0.01, (name, label)
        assert abs(part.height / 10_000 - THREE[name]) < 0.001


def test_stratify_treats_nulls_as_a_class() -> None:
    """Rows with a null class are spread over the parts like any other class."""
    df = pl.DataFrame({"y": [None] * 100 + ["a"] * 100})
    parts = split_frame(df, SplitSpec({"train": 0.8, "test": 0.2}, stratify="y"))
    assert parts["train"]["y"].null_count() == 80
    assert parts["test"]["y"].null_count() == 20


def test_random_split_cuts_exact_counts() -> None:
    """Without key or stratify, parts get exactly their share, rounded by largest remainder."""
    sizes = {n: p.height for n, p in split_frame(customers(1_001), SPECS["random"]).items()}
    assert sizes == {"train": 701, "valid": 150, "test": 150}
    tiny = split_frame(customers(2), SPECS["random"])
    assert [p.height for p in tiny.values()] == [2, 0, 0]


def test_empty_frame_gives_empty_parts_with_the_schema() -> None:
    """An empty table splits into empty parts that keep its columns and types."""
    df = customers(0)
    for spec in SPECS.values():
        parts = split_frame(df, spec)
        assert all(p.height == 0 and p.schema == df.schema for p in parts.values())


# -- time splits --------------------------------------------------------------------------------


def test_cutoffs_are_inclusive_on_the_left() -> None:
    """Part i holds cutoffs[i-1] <= t < cutoffs[i]: a row exactly at a cutoff goes later."""
    df = pl.DataFrame(
        {
            "ts": [
                datetime(2023, 12, 31, 23, 59),
                datetime(2024, 1, 1),
                datetime(2024, 3, 1),
                datetime(2024, 6, 1),
                datetime(2025, 1, 1),
                datetime(2020, 1, 1),
            ]
        }
    )
    spec = SplitSpec(THREE, time_column="ts", cutoffs=["2024-01-01", "2024-06-01"])
    assert assign_parts(df, spec).to_list() == [
        "train",
        "valid",
        "valid",
        "test",
        "test",
        "train",
    ]


def test_cutoffs_on_date_columns() -> None:
    """Date columns take date cutoffs; a cutoff with a time of day is refused."""
    df = pl.DataFrame({"day": [date(2024, 1, d) for d in range(1, 11)]})
    spec = SplitSpec({"before": 0, "after": 0}, time_column="day", cutoffs=["2024-01-08"])
    parts = split_frame(df, spec)
    assert parts["before"]["day"].max() == date(2024, 1, 7)
    assert parts["after"]["day"].min() == date(2024, 1, 8)
    bad = SplitSpec({"before": 0, "after": 0}, time_column="day", cutoffs=["2024-01-08T12:00"])
    with pytest.raises(InvalidInputError, match="holds dates; use a date"):
        split_frame(df, bad)


def test_naive_cutoffs_are_read_in_the_columns_time_zone() -> None:
    """For a zoned column, a naive cutoff is local time there; an offset cutoff is converted."""
    df = pl.DataFrame({"ts": [datetime(2024, 1, 1, 0, 30), datetime(2024, 1, 1, 1, 30)]})
    df = df.with_columns(pl.col("ts").dt.replace_time_zone("Europe/Paris"))
    local = SplitSpec({"a": 0, "b": 0}, time_column="ts", cutoffs=["2024-01-01T01:00"])
    assert assign_parts(df, local).to_list() == ["a", "b"]
    utc = SplitSpec({"a": 0, "b": 0}, time_column="ts", cutoffs=["2024-01-01T00:00+00:00"])
    assert assign_parts(df, utc).to_list() == ["a", "b"]  # 00:00 UTC is 01:00 in Paris
    naive = pl.DataFrame({"ts": [datetime(2024, 1, 1)]})
    with pytest.raises(InvalidInputError, match="has a time zone, but column 'ts' has none"):
        split_frame(naive, utc)


def test_time_split_without_cutoffs_follows_time_order() -> None:
    """Without cutoffs, rows are cut in time order; equal times stay in one part."""
    times = [date(2024, 1, 1 + i // 10) for i in range(100)]  # ten rows per day
    df = pl.DataFrame({"day": times[::-1], "i": range(100)})
    parts = split_frame(df, SplitSpec({"train": 0.75, "test": 0.25}, time_column="day"))
    # The cut would fall inside day 8; its rows all go to test, so no part straddles a day.
    assert parts["train"]["day"].max() < parts["test"]["day"].min()
    assert parts["train"].height == 70
    assert parts["train"]["i"].is_sorted()  # original order is kept inside a part


# -- partition property -------------------------------------------------------------------------


@st.composite
def frames_and_specs(draw: st.DrawFn) -> tuple[pl.DataFrame, SplitSpec]:
    n = draw(st.integers(0, 80))
    keys = draw(st.lists(st.integers(0, 30), min_size=n, max_size=n))
    classes = draw(st.lists(st.sampled_from(["a", "b", "c", None]), min_size=n, max_size=n))
    days = draw(st.lists(st.integers(0, 20), min_size=n, max_size=n))
    df = pl.DataFrame(
        {
            "row": list(range(n)),
            "k": keys,
            "y": classes,
            "t": [date(2024, 1, 1 + d) for d in days],
        },
        schema={"row": pl.Int64, "k": pl.Int64, "y": pl.String, "t": pl.Date},
    )
    weights = draw(st.lists(st.integers(1, 20), min_size=2, max_size=4))
    names = [f"p{i}" for i in range(len(weights))]
    fractions = {name: w / sum(weights) for name, w in zip(names, weights, strict=True)}
    seed = draw(st.integers(0, 2**32))
    method = draw(st.sampled_from(["hash", "stratified", "random", "time", "cutoffs"]))
    if method == "hash":
        spec = SplitSpec(fractions, key="k", seed=seed)
    elif method == "stratified":
        spec = SplitSpec(fractions, stratify="y", seed=seed)
    elif method == "random":
        spec = SplitSpec(fractions, seed=seed)
    elif method == "time":
        spec = SplitSpec(fractions, time_column="t")
    else:
        cuts = sorted(
            draw(st.sets(st.integers(0, 21), min_size=len(names) - 1, max_size=len(names) - 1))
        )
        spec = SplitSpec(
            fractions, time_column="t", cutoffs=[date(2024, 1, 1 + c).isoformat() for c in cuts]
        )
    return df, spec


@settings(max_examples=150, deadline=None)
@given(frames_and_specs())
def test_every_row_lands_in_exactly_one_part_in_original_order(
    case: tuple[pl.DataFrame, SplitSpec],
) -> None:
    """For any table and spec, the parts partition the rows and keep their order."""
    df, spec = case
    parts = split_frame(df, spec)
    assert list(parts) == spec.parts
    rows = [r for part in parts.values() for r in part["row"].to_list()]
    assert sorted(rows) == df["row"].to_list()  # union is the input, nothing twice
    for part in parts.values():
        assert part["row"].is_sorted()
        assert part.schema == df.schema
    combined = pl.concat(list(parts.values())).sort("row")
    assert combined.equals(df)


def test_assign_parts_is_an_enum_series() -> None:
    """assign_parts names every row's part with an Enum of the part names, in order."""
    parts = assign_parts(customers(10), SPECS["random"])
    assert parts.name == "part"
    assert parts.dtype == pl.Enum(["train", "valid", "test"])
    assert parts.len() == 10
