"""Did the data a model version was trained on pass its contract? One answer for the policy
check (``require: [contract]``), ``shipyard check`` and promotion.

Which contract applies to a dataset version is :meth:`Datasets.governing_contracts
<shipyard.data.datasets.Datasets.governing_contracts>` (the same rule serving and batch
scoring use to check requests). The verdict is the validation stored with that contract, or,
for a contract that is only bound, a check now (not stored, so a viewer in CI may run it).
Each answer names the dataset version and contract it came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shipyard.errors import ConflictError

if TYPE_CHECKING:
    from shipyard.data.datasets import Datasets
    from shipyard.registry.versions import ModelVersion

__all__ = ["CheckedNow", "TrainingContract", "summarize", "training_contracts"]

# Outcomes of contracts checked now, by (dataset version, contract): (passed, failures). A
# promotion fills it before taking the write lock and re-reads the verdicts under it without
# validating again.
CheckedNow = dict[tuple[str, str], tuple[bool, int]]


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


def training_contracts(
    datasets: Datasets,
    mv: ModelVersion,
    checked_now: CheckedNow | None = None,
    *,
    validate_now: bool = True,
) -> list[TrainingContract]:
    """The contract verdict of every dataset ``mv`` was trained on, in lineage order.

    ``checked_now`` holds the outcomes of contracts already checked now; new ones are added
    to it (a check now reads the data, which the access log records). Without
    ``validate_now`` (the caller holds the write lock, under which recording that read would
    wait for itself) a contract not checked yet is a conflict instead.

    Raises:
        ConflictError: without ``validate_now``, a contract applies that was not checked.
    """
    cache: CheckedNow = {} if checked_now is None else checked_now
    return [_verdict(datasets, ref, cache, validate_now) for ref in dict.fromkeys(mv.training_data)]


def summarize(verdicts: Sequence[TrainingContract], model_ref: str) -> tuple[bool | None, str]:
    """One verdict for all the training data: False when any dataset failed, True when every
    one passed, else None; with a sentence naming each dataset and its contract."""
    if not verdicts:
        return None, f"no training dataset is recorded for {model_ref}"
    about = "; ".join(f"{v.dataset} {v.detail}" for v in verdicts)
    if any(v.passed is False for v in verdicts):
        return False, about
    return (True if all(v.passed for v in verdicts) else None), about


def _verdict(
    datasets: Datasets, ref: str, cache: CheckedNow, validate_now: bool
) -> TrainingContract:
    found = []
    for g in datasets.governing_contracts(ref):
        passed, failures, now = g.passed, g.failures, False
        if passed is None:
            key = (g.checked, g.contract)
            if key not in cache and not validate_now:
                raise ConflictError(
                    f"the contract that applies to the training data {ref} ({g.contract} on "
                    f"{g.checked}) changed, or the version checked changed, while the check "
                    "ran; nothing was moved; run the command again"
                )
            if key not in cache:
                report = datasets.validate(g.checked, contract=g.contract, store=False)
                cache[key] = (report.passed, len(report.failures))
            (passed, failures), now = cache[key], True
        contract = g.contract
        found.append(TrainingContract(ref, passed, contract, g.checked, failures, g.depth, now))
    if not found:
        return TrainingContract(ref, None)
    failed = [f for f in found if f.passed is False]
    return (failed or found)[0]
