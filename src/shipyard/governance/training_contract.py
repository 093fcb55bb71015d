"""Did the data a model version was trained on pass its contract? One answer for the policy
check (``require: [contract]``), ``shipyard check`` and promotion.

For each training dataset the answer comes from, in order: the validation recorded on the
version itself; a check now against the contract bound to its dataset (not stored, so a
viewer in CI may run it); or else its parents, up the lineage (a split such as
``credit.train@1`` carries the validation of ``credit@3``, as serving does for its request
checks). Each answer names the dataset version and contract it came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.project import Project
    from shipyard.registry.models import ModelVersion

__all__ = ["TrainingContract", "summarize", "training_contracts"]


@dataclass(frozen=True)
class TrainingContract:
    """The contract verdict for one training dataset version.

    ``passed`` is None when no contract applies to the dataset or any of its ancestors.
    ``checked`` is the version whose validation gave the answer (``dataset`` itself or an
    ancestor ``depth`` generations up); ``now`` when it was checked now and not stored.
    """

    dataset: str
    passed: bool | None
    contract: str | None = None
    checked: str | None = None
    failures: int = 0
    depth: int = 0
    now: bool = False

    @property
    def detail(self) -> str:
        """``passed applicants@1``, ``fails young@1: 2 checks failed (validated on its parent
        credit@3)`` or ``no contract is bound …``."""
        if self.passed is None:
            return "no contract is bound to this dataset or its parents; not checked"
        via = ""
        if self.depth:
            kin = "parent" if self.depth == 1 else "ancestor"
            via = f" (validated on its {kin} {self.checked})"
        if self.passed:
            return f"passed {self.contract}{via}"
        n = self.failures
        return f"fails {self.contract}: {n} check{'' if n == 1 else 's'} failed{via}"


def training_contracts(project: Project, mv: ModelVersion) -> list[TrainingContract]:
    """The contract verdict of every dataset ``mv`` was trained on, in lineage order."""
    refs = [
        item["ref"]
        for item in mv.lineage
        if item.get("kind", "dataset") == "dataset" and item.get("context") == "train"
    ]
    return [_verdict(project, ref, 0, set()) for ref in dict.fromkeys(refs)]


def summarize(verdicts: Sequence[TrainingContract], model_ref: str) -> tuple[bool | None, str]:
    """One verdict for all the training data: False when any dataset failed, True when every
    one passed, else None; with a sentence naming each dataset and its contract."""
    if not verdicts:
        return None, f"no training dataset is recorded for {model_ref}"
    about = "; ".join(f"{v.dataset} {v.detail}" for v in verdicts)
    if any(v.passed is False for v in verdicts):
        return False, about
    return (True if all(v.passed for v in verdicts) else None), about


def _verdict(project: Project, ref: str, depth: int, seen: set[str]) -> TrainingContract:
    seen.add(ref)
    v = project.datasets.get(ref)
    if v.status in ("valid", "invalid"):
        failures = len((v.validation or {}).get("failures", []))
        return TrainingContract(ref, v.status == "valid", v.contract, v.ref, failures, depth)
    binding = project.contracts.binding(v.name)
    if binding and v.kind == "table":
        report = project.datasets.validate(v.ref, store=False)
        contract = project.contracts.get(binding).ref
        return TrainingContract(
            ref, report.passed, contract, v.ref, len(report.failures), depth, now=True
        )
    found = [
        _verdict(project, parent, depth + 1, seen) for parent in v.parents if parent not in seen
    ]
    failed = [f for f in found if f.passed is False]
    if failed or (found and all(f.passed for f in found)):
        first = (failed or found)[0]
        return TrainingContract(
            ref, first.passed, first.contract, first.checked, first.failures, first.depth, first.now
        )
    return TrainingContract(ref, None)
