"""shipyard: an MLOps platform for small teams.

>>> import shipyard
>>> project = shipyard.open_project(".")                 # doctest: +SKIP
>>> project.datasets.add("credit", "applicants.csv")     # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard.errors import (
    CheckFailedError,
    ConflictError,
    IntegrityError,
    InvalidInputError,
    InvalidReferenceError,
    MissingDependencyError,
    NotFoundError,
    PermissionDeniedError,
    ProjectNotFoundError,
    ShipyardError,
)
from shipyard.refs import Ref, parse_ref

if TYPE_CHECKING:
    from shipyard.data.datasets import DatasetSummary, DatasetVersion
    from shipyard.project import Project, init_project, open_project

__version__ = "0.1.0"

__all__ = [
    "CheckFailedError",
    "ConflictError",
    "DatasetSummary",
    "DatasetVersion",
    "IntegrityError",
    "InvalidInputError",
    "InvalidReferenceError",
    "MissingDependencyError",
    "NotFoundError",
    "PermissionDeniedError",
    "Project",
    "ProjectNotFoundError",
    "Ref",
    "ShipyardError",
    "__version__",
    "init_project",
    "open_project",
    "parse_ref",
]

_LAZY = {
    "Project": "shipyard.project",
    "init_project": "shipyard.project",
    "open_project": "shipyard.project",
    "DatasetVersion": "shipyard.data.datasets",
    "DatasetSummary": "shipyard.data.datasets",
}


def __getattr__(name: str) -> Any:
    # The services pull in SQLAlchemy; importing them lazily keeps `import shipyard` and the
    # CLI's start-up fast.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'shipyard' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
