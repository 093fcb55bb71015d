"""The public surface of ``import shipyard``: exactly the intended names, each importable."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys

import pytest

import shipyard

PUBLIC_API = {
    "AliasEvent",
    "Approval",
    "AuditEvent",
    "ChainReport",
    "CheckFailedError",
    "ConflictError",
    "ContractVersion",
    "DatasetSummary",
    "DatasetVersion",
    "Deployment",
    "DeploymentChange",
    "Experiment",
    "FeedbackItem",
    "FeedbackResult",
    "IntegrityError",
    "InvalidInputError",
    "InvalidReferenceError",
    "MissingDependencyError",
    "ModelSummary",
    "ModelVersion",
    "NewToken",
    "NotFoundError",
    "PermissionDeniedError",
    "PipelineRun",
    "PolicyResult",
    "Project",
    "ProjectNotFoundError",
    "Ref",
    "RunInfo",
    "ShipyardError",
    "StoredEvaluation",
    "StoredPolicy",
    "Token",
    "UnauthenticatedError",
    "UntrustedModelError",
    "User",
    "ValidationReport",
    "__version__",
    "init_project",
    "open_project",
    "autolog",
    "parse_ref",
    "pipeline",
    "step",
}


def test_all_is_exactly_the_public_api() -> None:
    """``shipyard.__all__`` lists exactly the intended public names, without repeats."""
    assert set(shipyard.__all__) == PUBLIC_API
    assert len(shipyard.__all__) == len(set(shipyard.__all__))


@pytest.mark.parametrize("name", sorted(PUBLIC_API))
def test_public_name_resolves(name: str) -> None:
    """Every public name can be read from the package (lazily imported ones included)."""
    assert getattr(shipyard, name) is not None


def test_lazy_names_are_the_implementation_objects() -> None:
    """Lazily exported names are the very objects their modules define."""
    from shipyard.data.datasets import DatasetSummary, DatasetVersion
    from shipyard.project import Project, init_project, open_project

    assert shipyard.Project is Project
    assert shipyard.init_project is init_project
    assert shipyard.open_project is open_project
    assert shipyard.DatasetVersion is DatasetVersion
    assert shipyard.DatasetSummary is DatasetSummary
    for name, module in shipyard._LAZY.items():
        assert getattr(shipyard, name) is getattr(importlib.import_module(module), name)


def test_unknown_attribute_raises_attribute_error() -> None:
    """Asking the package for a name it does not export raises AttributeError."""
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = shipyard.no_such_name  # type: ignore[attr-defined]


def test_version_matches_the_installed_distribution() -> None:
    """``shipyard.__version__`` is the version pip installed."""
    assert shipyard.__version__ == importlib.metadata.version("shipyard")


def test_import_does_not_load_the_database_layer() -> None:
    """``import shipyard`` stays light: SQLAlchemy loads only when a project is used."""
    code = "import sys, shipyard; print('sqlalchemy' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"
