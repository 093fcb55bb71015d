"""The model registry through the team server: the same verbs and read models as
:class:`shipyard.registry.models.Models`.

A model is saved with skops on the client and uploaded; ``load`` downloads the stored file,
checks its bytes against the digest the server states, and loads it here with the same
trusted-type rules as a local project (never pickle).
"""

from __future__ import annotations

import builtins
import json
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard._internal.decode import decode, decode_many
from shipyard._internal.hashing import Hasher
from shipyard._internal.progress import NO_PROGRESS, Progress
from shipyard.client.connection import TRANSFER_TIMEOUT, ServerConnection, segment
from shipyard.errors import IntegrityError, InvalidInputError
from shipyard.refs import validate_name
from shipyard.registry.code_approvals import CodeApproval, CodeSource
from shipyard.registry.versions import AliasEvent, ModelSummary, ModelVersion

if TYPE_CHECKING:
    from collections.abc import Mapping

    from shipyard.registry.batch import OnInvalid
    from shipyard.registry.signatures import CheckedPredictor

__all__ = ["RemoteModels"]

log = logging.getLogger("shipyard.client")

DIGEST_HEADER = "X-Shipyard-Digest"
FLAVOR_HEADER = "X-Shipyard-Flavor"


class RemoteModels:
    """Models on the server: ``get``, ``list``, ``versions``, plus ``alias_history`` and
    ``load``; runs register versions with :meth:`upload`."""

    def __init__(self, conn: ServerConnection) -> None:
        self._conn = conn

    def get(self, ref: str) -> ModelVersion:
        return decode(ModelVersion, self._conn.json("GET", f"/models/{segment(ref)}"))

    def list(self) -> builtins.list[ModelSummary]:
        return decode_many(ModelSummary, self._conn.json("GET", "/models"))

    def versions(self, name: str) -> builtins.list[ModelVersion]:
        return decode_many(
            ModelVersion, self._conn.json("GET", f"/models/{segment(name)}/versions")
        )

    def alias_history(self, name: str, alias: str | None = None) -> builtins.list[AliasEvent]:
        docs = self._conn.json(
            "GET", f"/models/{segment(name)}/aliases/history", params={"alias": alias}
        )
        return decode_many(AliasEvent, docs)

    def upload(
        self,
        name: str,
        model: Any,
        *,
        run_id: str,
        input_example: Any = None,
        description: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        """Save ``model`` in its flavor's format and register it on the server as a new
        version of ``name`` logged by run ``run_id`` (see :meth:`RemoteRun.log_model`).

        A custom code model (:class:`~shipyard.registry.flavors.code.CodeModel`) is run here,
        in its author's process, to infer its signature from ``input_example``, which is
        sent with it: the server does not run its code until an approver has approved it.

        Raises:
            InvalidInputError: a model of no flavor, a bad name, or a custom code model
                without an input example.
            UntrustedModelError: the file holds types the server would not load.
        """
        from shipyard.registry.flavors import flavor_of, save_model

        validate_name(name, "model name")
        fields = {"name": name, "description": description}
        if flavor_of(model) == "code":
            from shipyard.registry.signatures import infer_signature

            if input_example is None:
                raise InvalidInputError(
                    f"cannot log custom code model '{name}' to {self._conn.url} without an "
                    "input example: its signature is inferred here, by running it on the "
                    "example, since the server does not run unapproved code"
                )
            fields["signature"] = json.dumps(infer_signature(model, input_example).to_dict())
        elif input_example is not None:
            fields["input_example"] = _records_json(input_example)
        if tags:
            fields["tags"] = json.dumps(dict(tags))
        with tempfile.TemporaryDirectory(prefix="shipyard-model-") as tmp:
            path = Path(tmp) / f"{name}.skops"
            save_model(model, path)
            with open(path, "rb") as f:
                doc = self._conn.json(
                    "POST",
                    f"/runs/{segment(run_id)}/models",
                    data=fields,
                    files={"file": (path.name, f, "application/octet-stream")},
                    timeout=TRANSFER_TIMEOUT,
                )
        return decode(ModelVersion, doc)

    def code(self, ref: str) -> CodeSource:
        """The source code of a custom code model version, its digest and the confirmed
        approvals of that digest, for review (the server runs nothing)."""
        return decode(CodeSource, self._conn.json("GET", f"/models/{segment(ref)}/code"))

    def approve_code(self, ref: str, *, comment: str = "") -> CodeApproval:
        """Approve the code of a custom code model version (approver role; never an author
        of the version), so that it loads and serves on the server's project.

        Raises:
            PermissionDeniedError: the token's user is not an approver, or is an author.
        """
        doc = self._conn.json(
            "POST", f"/models/{segment(ref)}/code/approve", json_body={"comment": comment}
        )
        return decode(CodeApproval, doc)

    def load(
        self, ref: str, *, trusted: builtins.list[str] | tuple[str, ...] = ()
    ) -> CheckedPredictor:
        """A predictor for a version, loaded here: the downloaded bytes must match the digest
        the server states, and the file is loaded with skops' trusted-type check.

        Raises:
            IntegrityError: the bytes do not match the digest.
            UntrustedModelError: the file holds a type that is not trusted.
        """
        from shipyard.registry.flavors import load_model
        from shipyard.registry.signatures import CheckedPredictor, Signature

        v = self.get(ref)
        with tempfile.TemporaryDirectory(prefix="shipyard-model-") as tmp:
            path = Path(tmp) / "model.skops"
            hasher = Hasher()
            with (
                self._conn.stream("GET", f"/models/{segment(v.ref)}/download") as response,
                open(path, "wb") as out,
            ):
                stated = response.headers.get(DIGEST_HEADER, "")
                for chunk in response.iter_bytes():
                    hasher.update(chunk)
                    out.write(chunk)
            got = hasher.hexdigest()
            if stated != v.digest or got != v.digest:
                raise IntegrityError(
                    f"the file of model '{v.ref}' downloaded from {self._conn.url} does not match "
                    f"its digest {v.digest} (got {got}, the server stated {stated or 'nothing'}); "
                    "nothing was loaded; run `shipyard verify` on the server's project"
                )
            model = load_model(path, trusted=trusted)
        signature = Signature.from_dict(v.signature) if v.signature else None
        predictor = CheckedPredictor(model, signature, name=v.ref, saved_with=v.environment)
        problem = predictor.version_problem
        if problem is not None:
            log.warning("model %s: %s", v.ref, problem)
        return predictor

    def predict_file(
        self,
        ref: str,
        source: str | Path,
        dest: str | Path,
        *,
        chunk_size: int = 50_000,
        on_invalid: OnInvalid = "reject",
        force: bool = False,
        timestamp: str | None = None,
        online: bool = False,
        progress: Progress = NO_PROGRESS,
    ) -> dict[str, Any]:
        """Score a file here with the version loaded from the server (:meth:`load`), every row
        checked as a local ``models predict`` checks it: the server sends the contracts of
        the training data and the columns the pipeline cannot take missing
        (``GET /models/{ref}/row-checks``). The file never leaves this machine, so
        features are not looked up for it: a version trained on feature views needs its
        feature columns in the file (``timestamp`` and ``online`` are refused).

        Raises:
            InvalidInputError: a bad file, or refused rows with ``on_invalid="reject"``.
            ConflictError: the output exists and ``force`` is false.
            IntegrityError: the downloaded model does not match its digest.
        """
        from shipyard.registry.batch import score_file
        from shipyard.registry.row_checks import RowCheckRules

        if timestamp is not None or online:
            raise InvalidInputError(
                "--timestamp and --online look features up in a local project; on a team "
                "server, give the feature columns in the file (or score on the server's host)"
            )
        predictor = self.load(ref)
        rules = RowCheckRules.from_dict(
            self._conn.json("GET", f"/models/{segment(predictor.name)}/row-checks")
        )
        return score_file(
            predictor,
            Path(source),
            Path(dest),
            chunk_size,
            progress,
            checks=rules.checks(predictor.signature),
            on_invalid=on_invalid,
            force=force,
        )


def _records_json(example: Any) -> str:
    """An input example as JSON records (a DataFrame, or rows already as mappings)."""
    try:
        import pandas as pd

        if isinstance(example, pd.DataFrame):
            return str(example.to_json(orient="records", date_format="iso"))
    except ImportError:  # pragma: no cover - pandas is a dependency of scikit-learn users
        pass
    try:
        import polars as pl

        if isinstance(example, pl.DataFrame):
            return example.write_json()
    except ImportError:  # pragma: no cover
        pass
    try:
        return json.dumps(list(example))
    except TypeError:
        raise InvalidInputError(
            f"input_example must be a pandas or polars DataFrame or a list of records, not "
            f"{type(example).__name__}"
        ) from None
