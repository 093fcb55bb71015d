"""Argument conversion without pydantic for the plain parameter types of the commands.

Typer (0.29) converts every parameter's value with a pydantic ``TypeAdapter`` built for its
annotation, so any command with an option imports pydantic and builds adapters before it
runs: about a fifth of the start-up of a command that only reads the store. Most of the
values it converts are already of their type (a flag's ``True``, an option's default) or
plain text for ``str``, ``int``, ``float`` and ``Path`` parameters (``X | None`` reaches
the converter as ``X``), or a repeated option's texts (``list[str]``).

:func:`install` puts a converter in front of Typer's: for those types it returns what the
adapter returns, computed directly; for any other type or value (an enum, a list, a
``"1e3"`` for an ``int``, an integer out of its ``min``/``max``, a value the adapter would
refuse) it builds Typer's own converter at that moment and hands the value to it, so the
results and the error messages are Typer's. ``tests/cli/test_coerce.py`` holds the two
to the same results on a table of values.

With a Typer that does not have this layer (before 0.29), :func:`install` does nothing.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["install"]

_INT = re.compile(r"[+-]?[0-9]{1,18}")
_FLOAT = re.compile(r"[+-]?(?:[0-9]{1,15}(?:\.[0-9]{0,15})?|\.[0-9]{1,15})")
#: The value for which the direct conversion does not answer: Typer's converter does.
_TYPER = object()


def install() -> None:
    """Convert plain parameter types directly from now on (idempotent)."""
    try:
        from typer import _coercion, core
    except ImportError:  # a Typer without pydantic adapters: nothing to avoid
        return
    build: Any = getattr(core, "build_runtime_param", None)
    runtime_param: Any = getattr(_coercion, "RuntimeParam", None)
    if build is None or runtime_param is None or getattr(build, "_plain", False):
        return

    @dataclass(frozen=True)
    class PlainRuntimeParam(runtime_param):  # type: ignore[misc,valid-type]
        """Typer's converter for one parameter, built only when a value needs it."""

        descriptor: Any = None
        typer_param: list[Any] = field(default_factory=list)

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            got = _convert(self.annotation, self.parameter_info, value, param, ctx)
            if got is not _TYPER:
                return got
            if not self.typer_param:
                self.typer_param.append(build(self.descriptor))
            return self.typer_param[0]._coerce_value(value, param=param, ctx=ctx)

    def plain_or_typer(descriptor: Any) -> Any:
        if descriptor.file_annotation is None and _handled(
            descriptor.annotation, descriptor.parameter_info
        ):
            return PlainRuntimeParam(
                parameter_info=descriptor.parameter_info,
                annotation=descriptor.annotation,
                descriptor=descriptor,
            )
        return build(descriptor)

    plain_or_typer._plain = True  # type: ignore[attr-defined]
    plain_or_typer._typer = build  # type: ignore[attr-defined]
    core.build_runtime_param = plain_or_typer  # type: ignore[attr-defined]


def _is_text_list(annotation: Any) -> bool:
    return typing.get_origin(annotation) is list and typing.get_args(annotation) == (str,)


def _handled(annotation: Any, info: Any) -> bool:
    """Whether :func:`_convert` may answer for a parameter (it still may defer a value)."""
    if getattr(info, "parser", None) is not None:
        return False
    if _is_text_list(annotation):
        return True
    if annotation is bool or annotation is str:
        return True
    if annotation is int or annotation is float:
        return not getattr(info, "clamp", False)
    if annotation is Path:
        return getattr(info, "path_type", None) is None
    return False


def _convert(annotation: Any, info: Any, value: Any, param: Any, ctx: Any) -> Any:
    """What Typer's converter returns for ``value``, or :data:`_TYPER` to let it decide."""
    kind = type(value)
    if _is_text_list(annotation):
        # A repeated option's values, as pydantic returns them: a list of the same strings.
        if kind in (list, tuple) and all(type(v) is str for v in value):
            return list(value)
        return _TYPER
    if annotation is str:
        return value if kind is str else _TYPER
    if annotation is bool:
        return value if kind is bool else _TYPER
    if annotation is int:
        if kind is str and _INT.fullmatch(value):
            number = int(value)
        elif kind is int:
            number = value
        else:
            return _TYPER
        low, high = info.min, info.max
        if (low is not None and number < low) or (high is not None and number > high):
            return _TYPER  # Typer words the error
        return number
    if annotation is float:
        real: float
        if kind is float:
            real = value
        elif kind is int or (kind is str and _FLOAT.fullmatch(value)):
            real = float(value)
        else:
            return _TYPER
        low, high = info.min, info.max
        if (low is not None and real < low) or (high is not None and real > high):
            return _TYPER
        return real
    if annotation is Path:
        if kind is str and value:
            path = Path(value)  # what pydantic makes of the text
        elif isinstance(value, Path):
            path = value
        else:
            return _TYPER
        from typer._param_types import coerce_cli_path

        return coerce_cli_path(path, info, path_type=Path, param=param, ctx=ctx)
    return _TYPER
