"""Annotation policy: what must be written down before a dataset, contract or model version
is registered.

The project default policy (``shipyard policy set '*' FILE``) says it, versioned and audited
like the rest of the policy::

    annotations:
      datasets: [owner, description]        # tags on every new dataset version
      contracts: [description, column_descriptions]
      model_tags: [team]                    # tags on every new model version

A registration that lacks any of them is refused with the list of what is missing
(:class:`~shipyard.errors.CheckFailedError`, ``details["missing"]``). The format is described
in ``docs/governance.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from shipyard.errors import CheckFailedError

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from shipyard.data.contracts import Contract
    from shipyard.governance.policies import Annotations

__all__ = [
    "check_contract",
    "check_dataset",
    "check_model",
    "missing_tags",
    "required_annotations",
    "with_hint",
]

_POLICY = "the policy: `shipyard policy show '*'`"


def required_annotations(conn: Connection) -> Annotations:
    """The annotations the project default policy requires (none without one)."""
    from shipyard.governance.policies import Annotations
    from shipyard.governance.policy_registry import PROJECT_DEFAULT
    from shipyard.stores.db.tables import policies

    spec = conn.execute(
        select(policies.c.spec)
        .where(policies.c.name == PROJECT_DEFAULT)
        .order_by(policies.c.version.desc())
        .limit(1)
    ).scalar()
    if not spec or "annotations" not in spec:
        return Annotations()
    raw = spec["annotations"]
    return Annotations(
        datasets=tuple(raw.get("datasets", ())),
        contracts=tuple(raw.get("contracts", ())),
        model_tags=tuple(raw.get("model_tags", ())),
    )


def _has(tags: Mapping[str, str], key: str) -> bool:
    return bool(str(tags.get(key) or "").strip())


def check_dataset(conn: Connection, name: str, message: str, tags: Mapping[str, str]) -> None:
    """Refuse a new version of dataset ``name`` without the tags the policy requires
    (``description`` is also met by the version's message).

    Raises:
        CheckFailedError: listing what is missing.
    """
    required = required_annotations(conn).datasets
    missing = [
        k for k in required if not _has(tags, k) and not (k == "description" and message.strip())
    ]
    if missing:
        hint = " ".join("-m TEXT" if k == "description" else f"--tag {k}=VALUE" for k in missing)
        _refuse(f"dataset '{name}'", [f"tag '{k}'" for k in missing], f"add {hint}")


def check_contract(conn: Connection, name: str, contract: Contract) -> None:
    """Refuse a new version of contract ``name`` without the parts the policy requires.

    Raises:
        CheckFailedError: listing what is missing (each column without a description).
    """
    required = required_annotations(conn).contracts
    missing: list[str] = []
    if "description" in required and not contract.description.strip():
        missing.append("description")
    if "owner" in required and not (contract.owner or "").strip():
        missing.append("owner")
    if "column_descriptions" in required:
        missing += [
            f"columns.{c}.description"
            for c, spec in contract.columns.items()
            if not spec.description.strip()
        ]
    if missing:
        _refuse(f"contract '{name}'", missing, "add them to the contract file")


def check_model(conn: Connection, name: str, tags: Mapping[str, str]) -> None:
    """Refuse a new version of model ``name`` without the tags the policy requires; a tag
    of the registered model itself (set through the MLflow registry) counts too.

    Raises:
        CheckFailedError: listing what is missing.
    """
    from shipyard.stores.db.tables import model_tags, registered_models

    required = required_annotations(conn).model_tags
    if not required:
        return
    rows = conn.execute(
        select(model_tags.c.key, model_tags.c.value)
        .join(registered_models, registered_models.c.id == model_tags.c.model_id)
        .where(registered_models.c.name == name)
        .where(model_tags.c.version == 0)
    )
    own = {r.key: r.value for r in rows}
    missing = [k for k in required if not _has(tags, k) and not _has(own, k)]
    if missing:
        hint = " ".join(f"--tag {k}=VALUE" for k in missing)
        _refuse(f"model '{name}'", [f"tag '{k}'" for k in missing], f"tag it: {hint}")


def _refuse(what: str, missing: list[str], hint: str) -> None:
    details: dict[str, Any] = {"missing": missing, "subject": what}
    raise CheckFailedError(_refusal(what, missing, hint), details=details)


def _refusal(what: str, missing: list[str], hint: str) -> str:
    return (
        f"refused: {what} lacks what the project's annotation policy requires: "
        f"{', '.join(missing)} ({hint}; {_POLICY})"
    )


def missing_tags(exc: CheckFailedError) -> list[str]:
    """The names of the tags the annotation policy's refusal ``exc`` lists as missing."""
    missing = exc.details.get("missing") or []
    return [m[5:-1] for m in missing if isinstance(m, str) and m.startswith("tag '")]


def with_hint(exc: CheckFailedError, hint: str) -> CheckFailedError:
    """The annotation policy's refusal ``exc`` with ``hint`` as the way to add what is
    missing, for a caller where the command-line options of the default hint do not apply
    (a pipeline step, autolog); any other error as it is. Works on a refusal that came back
    from a server too: it is recognised, and written again, from its ``details``."""
    what, missing = exc.details.get("subject"), exc.details.get("missing")
    if not isinstance(what, str) or not isinstance(missing, list):
        return exc
    return CheckFailedError(_refusal(what, [str(m) for m in missing], hint), details=exc.details)
