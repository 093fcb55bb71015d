"""Custom code models through the team server as in a local project: a contributor logs one
(its source and .npz weights; the signature inferred in the author's own process), an approver
who is not its author reads and approves its code, and then it loads on the server's side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shipyard.errors import InvalidInputError, PermissionDeniedError
from shipyard.project import Project
from shipyard.registry.flavors import save_model
from shipyard.registry.flavors.code import CodeNotApprovedError
from tests.client.conftest import Acting
from tests.governance.test_code_trust import EXAMPLE, hand_model


@pytest.fixture
def backend(tmp_path: Path) -> str:
    """SQLite only: the upload path is the same on PostgreSQL, which the conformance suite
    already runs through the server."""
    return f"sqlite:///{tmp_path / 'metadata.db'}"


def test_a_custom_code_model_is_logged_and_its_code_approved_by_another(
    acting: Acting, project: Project
) -> None:
    model = hand_model()
    carol, abe = acting("contributor"), acting("approver")
    with carol.start_run("exp") as run:
        mv = run.log_model(model, "hand", input_example=EXAMPLE)
    assert (mv.ref, mv.flavor, mv.run_id) == ("hand@1", "code", run.id)
    assert list(mv.signature["inputs"]["columns"]) == ["a", "b", "city"]
    assert mv.signature["outputs"]["classes"] == [0, 1]
    with pytest.raises(CodeNotApprovedError, match="approve-code hand@1"):
        project.models.load("hand@1")
    with pytest.raises(PermissionDeniedError):  # a contributor approves nothing
        carol.models.approve_code("hand@1")
    with abe.start_run("exp") as run:
        run.log_model(model, "hand", input_example=EXAMPLE)  # hand@2: abe is its author
    with pytest.raises(PermissionDeniedError, match="separation of duties"):
        abe.models.approve_code("hand@2")
    source = abe.models.code("hand@1")
    assert (source.digest, source.approved) == (model.code_digest, False)
    assert "class HandLogistic" in source.source
    approval = abe.models.approve_code("hand@1", comment="read it")
    assert (approval.approver, approval.digest, approval.model) == (
        "abe",
        model.code_digest,
        "hand@1",
    )
    assert abe.models.code("hand@2").approved  # the same code, approved once
    for ref in ("hand@1", "hand@2"):
        np.testing.assert_allclose(
            project.models.load(ref).predict_proba(EXAMPLE), model.predict_proba(EXAMPLE)
        )
    assert project.audit.verify().ok


def test_an_uploaded_code_model_needs_its_signature_and_an_intact_archive(
    project: Project, tmp_path: Path
) -> None:
    """The server never runs unapproved code, so an upload without the client's signature is
    refused, as is an archive whose code does not match its manifest's digest."""
    path = tmp_path / "hand.bin"
    save_model(hand_model(), path)
    with pytest.raises(InvalidInputError, match="its signature comes with it"):
        project.models.register_file("hand", path)
    signature: dict[str, Any] = {"inputs": {"columns": {}}, "outputs": {"kind": "nonsense"}}
    with pytest.raises(InvalidInputError, match="the signature given is not one"):
        project.models.register_file("hand", path, signature=signature)
    model = hand_model()
    model.source += "\n# changed after saving\n"
    save_model(model, path)  # a consistent archive of other code: accepted...
    from shipyard.registry.signatures import infer_signature

    good = infer_signature(hand_model(), EXAMPLE).to_dict()
    mv = project.models.register_file("hand", path, signature=good)
    assert mv.flavor == "code"
    assert project.models.code(mv.ref).digest == model.code_digest != hand_model().code_digest
