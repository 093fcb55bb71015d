"""Options of plain types are converted without Typer's pydantic adapters, to the same values
and with the same errors (cli/_coerce.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import shipyard.cli._common  # noqa: F401  (installs the direct conversion)
from shipyard.cli import _coerce
from shipyard.cli._coerce import _TYPER, _convert

runner = CliRunner()

# value given on the command line -> what a command of each type receives
CASES: list[tuple[type[Any], dict[str, Any], str]] = [
    (int, {}, "7"),
    (int, {}, "-12"),
    (int, {}, "+3"),
    (int, {}, "007"),
    (int, {}, "123456789012345678"),
    (int, {}, "1_000"),
    (int, {}, " 5"),
    (int, {}, "1e3"),
    (int, {}, "2.0"),
    (int, {}, "x"),
    (int, {"min": 1}, "0"),
    (int, {"min": 1, "max": 9}, "9"),
    (int, {"min": 1, "max": 9}, "10"),
    (int, {"min": 1, "max": 9, "clamp": True}, "10"),
    (float, {}, "0.5"),
    (float, {}, "-3"),
    (float, {}, "1."),
    (float, {}, ".25"),
    (float, {}, "1e-3"),
    (float, {}, "nan"),
    (float, {}, "inf"),
    (float, {}, "abc"),
    (float, {"min": 0.0, "max": 1.0}, "1.5"),
    (float, {"min": 0.0, "max": 1.0}, "0.25"),
    (str, {}, "hello"),
    (str, {}, ""),
    (str, {}, "é ü"),
    (Path, {}, "some/dir/"),
    (Path, {}, "."),
    (Path, {}, "~/x"),
    (Path, {}, ""),
    (Path, {"exists": True}, "missing-file"),
    (Path, {"dir_okay": False}, "."),
    (Path, {"file_okay": False}, "present.txt"),
    # The same types when the option may be left out (``X | None``).
    (int | None, {}, "7"),  # type: ignore[list-item]
    (int | None, {}, "x"),  # type: ignore[list-item]
    (int | None, {"min": 1}, "0"),  # type: ignore[list-item]
    (float | None, {}, "0.5"),  # type: ignore[list-item]
    (str | None, {}, "hello"),  # type: ignore[list-item]
    (str | None, {}, ""),  # type: ignore[list-item]
    (Path | None, {}, "some/dir/"),  # type: ignore[list-item]
    (Path | None, {"exists": True}, "missing-file"),  # type: ignore[list-item]
    (Path | None, {"dir_okay": False}, "."),  # type: ignore[list-item]
]

# A repeated option: the values given (none, one, several) -> what the command receives.
LISTS: list[tuple[Any, list[str]]] = [
    (list[str], []),
    (list[str], ["a"]),
    (list[str], ["a", "b=c", ""]),
    (list[str] | None, []),
    (list[str] | None, ["k=v", "é"]),
    (list[int] | None, ["1", "2"]),  # not converted directly: Typer's converter answers
]


def _app(kind: type[Any], options: dict[str, Any]) -> typer.Typer:
    app = typer.Typer()

    def show(value: Any = typer.Option(None, **options)) -> None:
        typer.echo(f"{type(value).__name__}:{value!r}")

    show.__annotations__["value"] = kind  # postponed annotations would name the variable
    app.command()(show)
    return app


def _run(kind: type[Any], options: dict[str, Any], text: str) -> tuple[int, str]:
    done = runner.invoke(_app(kind, options), ["--value", text])
    return done.exit_code, done.output


@pytest.mark.parametrize(("kind", "options", "text"), CASES)
def test_a_value_converts_as_typer_converts_it(
    kind: type[Any],
    options: dict[str, Any],
    text: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The exit code and output (the value the command got, or the usage error) are those of
    Typer's own pydantic adapters, with the direct conversion installed or not."""
    from typer import core

    monkeypatch.chdir(tmp_path)
    (tmp_path / "present.txt").write_text("x")
    plain = core.build_runtime_param
    assert getattr(plain, "_plain", False)  # importing shipyard.cli installed it
    with_plain = _run(kind, options, text)
    monkeypatch.setattr(core, "build_runtime_param", plain._typer)
    assert not getattr(core.build_runtime_param, "_plain", False)
    assert with_plain == _run(kind, options, text)


@pytest.mark.parametrize(("kind", "values"), LISTS)
def test_a_repeated_option_converts_as_typer_converts_it(
    kind: Any, values: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A list option given zero, one or several times: the same values reach the command
    with or without the direct conversion."""
    from typer import core

    args = [a for v in values for a in ("--value", v)]
    plain = core.build_runtime_param
    with_plain = runner.invoke(_app(kind, {}), args)
    monkeypatch.setattr(core, "build_runtime_param", plain._typer)
    with_typer = runner.invoke(_app(kind, {}), args)
    assert (with_plain.exit_code, with_plain.output) == (with_typer.exit_code, with_typer.output)
    assert with_plain.exit_code == 0, with_plain.output


def test_plain_values_do_not_reach_the_typer_converter() -> None:
    """The common values are answered directly; unusual ones go to Typer's converter."""

    class Info:
        min = max = None

    assert _convert(int, Info(), "42", None, None) == 42
    assert _convert(float, Info(), 3, None, None) == 3.0
    assert _convert(str, Info(), "a", None, None) == "a"
    assert _convert(bool, Info(), True, None, None) is True
    assert _convert(int, Info(), "4e2", None, None) is _TYPER
    assert _convert(bool, Info(), "yes", None, None) is _TYPER
    assert _convert(list[str], Info(), ("a", "b"), None, None) == ["a", "b"]
    assert _convert(list[int], Info(), ("1",), None, None) is _TYPER


def test_install_is_idempotent() -> None:
    from typer import core

    before = core.build_runtime_param
    _coerce.install()
    assert core.build_runtime_param is before
