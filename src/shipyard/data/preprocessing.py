"""Declarative preprocessing: a per-column spec that compiles to a scikit-learn ColumnTransformer.

Users write what should happen to each column; shipyard turns it into plain scikit-learn
objects, so the fitted transformer can be the first step of a model pipeline and be versioned
(and serialised with skops) together with the model::

    columns:
      age:     {impute: median, scale: standard}
      income:  {impute: {strategy: constant, fill_value: 0}, scale: robust}
      city:    {impute: most_frequent, encode: {method: onehot, handle_unknown: ignore}}
      grade:   {encode: {method: ordinal, categories: [A, B, C]}}
      id:      {drop: true}
    remainder: drop

>>> spec = PreprocessingSpec(columns={"age": ColumnStep(impute="median", scale="standard")})
>>> spec.to_dict()
{'columns': {'age': {'impute': 'median', 'scale': 'standard'}}, 'remainder': 'drop'}

Validation gathers every problem in a spec and raises one
:class:`~shipyard.errors.InvalidInputError` whose ``details["problems"]`` lists them.

This module holds :class:`PreprocessingSpec` and its document forms (dict, YAML, file). The
column steps it is made of (:class:`Impute`, :class:`Encode`, :class:`ColumnStep`) and the
problem-gathering helpers are in :mod:`shipyard.data.preprocessing_steps` and are re-exported
here; the compilation to scikit-learn is in :mod:`shipyard.data.preprocessing_sklearn`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

from shipyard.data.preprocessing_sklearn import column_transformer

# The "X as X" imports re-export names that were defined here before the steps moved out:
# the step vocabularies, and the problem helpers that shipyard.data.inference imports from here.
from shipyard.data.preprocessing_steps import ENCODE_METHODS as ENCODE_METHODS
from shipyard.data.preprocessing_steps import HANDLE_UNKNOWN as HANDLE_UNKNOWN
from shipyard.data.preprocessing_steps import IMPUTE_STRATEGIES as IMPUTE_STRATEGIES
from shipyard.data.preprocessing_steps import SCALE_METHODS as SCALE_METHODS
from shipyard.data.preprocessing_steps import ColumnStep, Encode, Impute, _unknown_keys
from shipyard.data.preprocessing_steps import EncodeMethod as EncodeMethod
from shipyard.data.preprocessing_steps import HandleUnknown as HandleUnknown
from shipyard.data.preprocessing_steps import ImputeStrategy as ImputeStrategy
from shipyard.data.preprocessing_steps import Scalar as Scalar
from shipyard.data.preprocessing_steps import ScaleMethod as ScaleMethod
from shipyard.data.preprocessing_steps import gather_problems as gather_problems
from shipyard.data.preprocessing_steps import not_one_of as not_one_of
from shipyard.data.preprocessing_steps import raise_problems as raise_problems
from shipyard.errors import InvalidInputError

if TYPE_CHECKING:
    from sklearn.compose import ColumnTransformer

__all__ = [
    "ColumnStep",
    "Encode",
    "Impute",
    "PreprocessingSpec",
]

Remainder = Literal["drop", "passthrough"]
REMAINDERS: tuple[str, ...] = get_args(Remainder)
_SPEC_KEYS = ("columns", "remainder")


@dataclass(frozen=True, init=False)
class PreprocessingSpec:
    """Per-column preprocessing, plus what happens to columns the spec does not mention.

    >>> spec = PreprocessingSpec.from_yaml('''
    ... columns:
    ...   age: {impute: median, scale: standard}
    ...   id: {drop: true}
    ... remainder: passthrough
    ... ''')
    >>> spec.columns["age"].scale, spec.remainder
    ('standard', 'passthrough')

    Raises:
        InvalidInputError: any column step is invalid or ``remainder`` is not ``drop`` or
            ``passthrough``; every problem is listed in one error.
    """

    columns: dict[str, ColumnStep]
    remainder: Remainder

    def __init__(
        self,
        columns: Mapping[str, ColumnStep | Mapping[str, Any] | None] | None = None,
        remainder: Remainder = "drop",
    ) -> None:
        problems: list[str] = []
        steps: dict[str, ColumnStep] = {}
        if columns is not None and not isinstance(columns, Mapping):
            problems.append(f"columns: expected a mapping of column name to step, got {columns!r}")
            columns = None
        for name, step in (columns or {}).items():
            if not isinstance(name, str) or not name:
                problems.append(f"columns: column names must be non-empty strings, got {name!r}")
                continue
            if isinstance(step, ColumnStep):
                steps[name] = step
                continue
            built = gather_problems(
                f"columns.{name}", problems, partial(ColumnStep.from_dict, step)
            )
            if built is not None:
                steps[name] = built
        if remainder not in REMAINDERS:
            problems.append(f"remainder: {not_one_of(remainder, REMAINDERS)}")
        raise_problems("preprocessing spec", problems)
        object.__setattr__(self, "columns", steps)
        object.__setattr__(self, "remainder", remainder)

    # -- documents ---------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PreprocessingSpec:
        """Build from a document such as the one :meth:`to_dict` returns.

        Raises:
            InvalidInputError: the document is not a mapping, has unknown keys or invalid
                steps; every problem is listed in one error.
        """
        if not isinstance(data, Mapping):
            raise InvalidInputError(
                f"a preprocessing spec must be a mapping with 'columns', got {type(data).__name__}"
            )
        # Key typos are reported together with the problems of the steps.
        problems = _unknown_keys(data, _SPEC_KEYS)
        spec = gather_problems(
            "", problems, lambda: cls(data.get("columns"), data.get("remainder", "drop"))
        )
        raise_problems("preprocessing spec", problems)
        return cast(PreprocessingSpec, spec)

    @classmethod
    def from_yaml(cls, text: str) -> PreprocessingSpec:
        """Parse a YAML document (an empty one is a spec that drops every column).

        Raises:
            InvalidInputError: the text is not valid YAML (or writes a key twice) or not a
                valid spec.
        """
        from shipyard.data.contract_parsing import load_yaml

        data = load_yaml(text, "preprocessing spec", None)
        return cls.from_dict({} if data is None else data)

    @classmethod
    def from_file(cls, path: str | Path) -> PreprocessingSpec:
        """Read a YAML file.

        Raises:
            InvalidInputError: the file does not exist or is not a valid spec (the message
                names the file).
        """
        from shipyard.data.contract_parsing import read_document

        path = Path(path)
        if not path.exists():
            raise InvalidInputError(f"{path}: no such file")
        text = read_document(path, "preprocessing spec")
        try:
            return cls.from_yaml(text)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{path}: {exc.message}", details=exc.details) from None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready document; ``PreprocessingSpec.from_dict(spec.to_dict()) == spec``."""
        return {
            "columns": {name: step.to_dict() for name, step in self.columns.items()},
            "remainder": self.remainder,
        }

    def to_yaml(self) -> str:
        """The spec as YAML, in the short forms users write."""
        import yaml

        return yaml.safe_dump(
            self.to_dict(), sort_keys=False, default_flow_style=None, allow_unicode=True
        )

    # -- scikit-learn --------------------------------------------------------------------------

    def to_column_transformer(self) -> ColumnTransformer:
        """An unfitted :class:`sklearn.compose.ColumnTransformer` implementing the spec.

        Columns with identical steps share one Pipeline (imputer, then scaler or encoder).
        Output is a pandas DataFrame with plain feature names (``age``, ``city_Paris``), so
        one-hot columns are dense. Only scikit-learn classes are used, so the transformer can
        be cloned, put in a model Pipeline and serialised with skops.

        Missing values are what scikit-learn's SimpleImputer recognises: NaN (also in pandas
        ``str`` columns) and ``pd.NA`` in nullable dtypes, not ``None`` in an ``object`` column.

        >>> spec = PreprocessingSpec(columns={"age": ColumnStep(impute="median")})
        >>> [name for name, _, _ in spec.to_column_transformer().transformers]
        ['median']
        """
        return column_transformer(self)
