"""shipyard: an MLOps platform for small teams.

>>> import shipyard
>>> project = shipyard.open_project(".")                 # doctest: +SKIP
>>> project.datasets.add("credit", "applicants.csv")     # doctest: +SKIP
"""

from __future__ import annotations

# typing.TYPE_CHECKING without importing typing (mypy reads any TYPE_CHECKING so): the
# command line's up-to-date answer imports this package and counts every millisecond.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from shipyard.data.contract_registry import ContractVersion
    from shipyard.data.datasets import DatasetSummary, DatasetVersion
    from shipyard.data.validation_report import ValidationReport
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
        UnauthenticatedError,
    )
    from shipyard.governance.access import User
    from shipyard.governance.approvals import Approval
    from shipyard.governance.deployments import Deployment, DeploymentChange
    from shipyard.governance.policy_checks import PolicyResult
    from shipyard.governance.policy_registry import StoredPolicy
    from shipyard.governance.reports import StoredEvaluation
    from shipyard.governance.tokens import NewToken, Token
    from shipyard.pipelines.dag import pipeline, step
    from shipyard.pipelines.records import PipelineRun
    from shipyard.project import Project, init_project, open_project
    from shipyard.refs import Ref, parse_ref
    from shipyard.registry.autolog import autolog
    from shipyard.registry.flavors import UntrustedModelError
    from shipyard.registry.versions import AliasEvent, ModelSummary, ModelVersion
    from shipyard.serving.feedback import FeedbackItem, FeedbackResult
    from shipyard.stores.audit import AuditEvent, ChainReport
    from shipyard.tracking.runs import Experiment, RunInfo

__version__ = "0.1.0"

__all__ = [
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
    "autolog",
    "init_project",
    "open_project",
    "parse_ref",
    "pipeline",
    "step",
]

# Loaded on first use: the services pull in SQLAlchemy, polars and scikit-learn; even the
# errors and references are, since `shipyard pipeline run` can answer "up to date" in less
# time than importing them takes (see shipyard.cli.uptodate).
_LAZY = {
    "CheckFailedError": "shipyard.errors",
    "ConflictError": "shipyard.errors",
    "IntegrityError": "shipyard.errors",
    "InvalidInputError": "shipyard.errors",
    "InvalidReferenceError": "shipyard.errors",
    "MissingDependencyError": "shipyard.errors",
    "NotFoundError": "shipyard.errors",
    "PermissionDeniedError": "shipyard.errors",
    "ProjectNotFoundError": "shipyard.errors",
    "ShipyardError": "shipyard.errors",
    "UnauthenticatedError": "shipyard.errors",
    "Ref": "shipyard.refs",
    "parse_ref": "shipyard.refs",
    "Project": "shipyard.project",
    "autolog": "shipyard.registry.autolog",
    "init_project": "shipyard.project",
    "open_project": "shipyard.project",
    "DatasetVersion": "shipyard.data.datasets",
    "DatasetSummary": "shipyard.data.datasets",
    "ContractVersion": "shipyard.data.contract_registry",
    "ValidationReport": "shipyard.data.validation_report",
    "RunInfo": "shipyard.tracking.runs",
    "Experiment": "shipyard.tracking.runs",
    "ModelVersion": "shipyard.registry.versions",
    "ModelSummary": "shipyard.registry.versions",
    "AliasEvent": "shipyard.registry.versions",
    "UntrustedModelError": "shipyard.registry.flavors",
    "StoredEvaluation": "shipyard.governance.reports",
    "StoredPolicy": "shipyard.governance.policy_registry",
    "PolicyResult": "shipyard.governance.policy_checks",
    "Approval": "shipyard.governance.approvals",
    "Deployment": "shipyard.governance.deployments",
    "DeploymentChange": "shipyard.governance.deployments",
    "User": "shipyard.governance.access",
    "Token": "shipyard.governance.tokens",
    "NewToken": "shipyard.governance.tokens",
    "FeedbackItem": "shipyard.serving.feedback",
    "FeedbackResult": "shipyard.serving.feedback",
    "AuditEvent": "shipyard.stores.audit",
    "PipelineRun": "shipyard.pipelines.records",
    "pipeline": "shipyard.pipelines.dag",
    "step": "shipyard.pipelines.dag",
    "ChainReport": "shipyard.stores.audit",
}


def __getattr__(name: str) -> Any:
    # The services pull in SQLAlchemy; importing them lazily keeps `import shipyard` and the
    # CLI's start-up fast.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'shipyard' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
