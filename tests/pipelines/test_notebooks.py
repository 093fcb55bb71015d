"""Notebooks as code: a notebook step runs through papermill on a real Jupyter kernel, keyed by
the notebook stripped of outputs; a run started inside a notebook records that notebook.

Kernels are slow to start: the module launches two (the first run, and the run after a
code-cell edit); every other run is a cache hit."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("papermill")

import shipyard  # noqa: E402
from shipyard.errors import InvalidInputError, MissingDependencyError  # noqa: E402
from shipyard.project import Project  # noqa: E402
from shipyard.tracking.notebook import (  # noqa: E402
    capture_notebook,
    locate_notebook,
    strip_notebook,
)
from tests.cli.conftest import Cli  # noqa: E402

PIPELINE = """
from shipyard import pipeline, step
from shipyard.pipelines import notebook_step


@step
def double(summary: dict) -> float:
    return summary["total"] * 2


@pipeline
def nb(rows: int = 4):
    double(notebook_step("train.ipynb", name="train", params={"rows": rows}))
"""

YAML = """
pipeline: nb_yaml
params: {rows: 4}
steps:
  train:
    notebook: train.ipynb
    params: {rows: "${rows}"}
"""


def notebook(root: Path, body: str = "print('training')") -> nbformat.NotebookNode:
    """A notebook with a `parameters` cell that imports a helper module beside it, starts a
    tracked run, and writes its result and a note into `shipyard_outputs`."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Py"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Training"),
        nbformat.v4.new_code_cell("rows = 3", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            f"import helpers\n{body}\nvalues = [i * helpers.K for i in range(rows)]"
        ),
        nbformat.v4.new_code_cell(
            textwrap.dedent(
                f"""\
                import json, pathlib
                import shipyard
                project = shipyard.open_project({str(root)!r}, actor="alice")
                with project.runs.start("inside") as run:
                    run.log_metric("total", sum(values))
                out = pathlib.Path(shipyard_outputs)
                (out / "result.json").write_text(json.dumps({{"total": sum(values)}}))
                (out / "inside_run.txt").write_text(run.id)"""
            )
        ),
    ]
    return nb


@pytest.fixture(scope="module")
def flows(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, Path]]:
    root = tmp_path_factory.mktemp("notebooks") / "proj"
    project = shipyard.init_project(root, actor="alice")
    code = root / "flows"
    code.mkdir()
    (code / "pipe.py").write_text(PIPELINE)
    (code / "pipe.yaml").write_text(YAML)
    (code / "helpers.py").write_text("K = 2\n")
    nbformat.write(notebook(root), code / "train.ipynb")
    try:
        yield project, code
    finally:
        project.close()


def artifact_text(project: Project, run_id: str, path: str) -> str:
    found = {a["path"]: a for a in project.runs.get(run_id).artifacts}
    return project.artifacts.read_bytes(found[path]["digest"], owner="test").decode()


def test_a_notebook_step_runs_with_its_params_and_records_the_notebook(
    flows: tuple[Project, Path], cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The notebook gets `rows` through papermill, its result.json is the step's output
    (read by the next step), the executed notebook (outputs included) and the other files
    it wrote are artifacts of the step's run, the pipeline run stores the stripped notebook
    as code, and the run started inside the notebook records that notebook as its code."""
    project, code = flows
    first = project.pipelines.run(str(code / "pipe.py"))
    assert first.status == "succeeded", [s.error for s in first.steps]
    train, double = first.step("train"), first.step("double")
    assert train.cache == "miss"
    read = project.artifacts.read_bytes
    assert json.loads(read(train.outputs["digest"], owner="test")) == {"total": 12}  # 0+2+4+6
    assert json.loads(read(double.outputs["digest"], owner="test")) == 24.0

    step_run = project.runs.get(train.run_id or "")
    assert step_run.params == {"rows": "4"}
    executed = nbformat.reads(artifact_text(project, step_run.id, "notebook/train.ipynb"), 4)
    streams = [
        o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs
    ]
    assert "training\n" in streams
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    inside_id = artifact_text(project, step_run.id, "notebook-outputs/inside_run.txt")

    stripped, digest = strip_notebook((code / "train.ipynb").read_bytes())
    assert step_run.code["step"]["digest"] == digest
    assert step_run.code["step"]["modules"]["helpers"]["file"] == "flows/helpers.py"
    assert artifact_text(project, first.id, "code/flows/train.ipynb") == stripped

    inside = project.runs.get(inside_id)
    assert inside.metrics == {"total": 12.0}
    assert inside.code["notebook"] == {
        "path": str((code / "train.ipynb").resolve()),
        "located_by": "PAPERMILL_INPUT_PATH",
        "digest": digest,
        "artifact": "code/train.ipynb",
    }
    assert artifact_text(project, inside.id, "code/train.ipynb") == stripped
    monkeypatch.chdir(code.parent)
    shown = cli("runs", "show", inside.id, user="alice")
    assert shown.code == 0, shown.stderr
    assert f"notebook: {(code / 'train.ipynb').resolve()} ({digest[:19]}" in shown.stdout


def test_outputs_do_not_change_the_key_and_a_code_cell_edit_does(
    flows: tuple[Project, Path],
) -> None:
    """Run again: a hit (from the YAML pipeline too: same notebook, same params, same key).
    Saved after running in Jupyter (outputs, counts, new cell ids, kernel version): still a
    hit. A code cell edited: a miss, and `explain` shows the notebook's digest change."""
    project, code = flows
    file = code / "train.ipynb"
    project.pipelines.run(str(code / "pipe.py"))  # computed here when this test runs alone
    before = project.pipelines.run(str(code / "pipe.py"))
    assert {s.name: s.cache for s in before.steps} == {"train": "hit", "double": "hit"}
    yaml_run = project.pipelines.run(str(code / "pipe.yaml"))
    assert yaml_run.step("train").cache == "hit"

    nb = nbformat.read(file, as_version=4)
    for n, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        cell.execution_count = n + 7
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"out {n}\n")]
        cell.metadata["execution"] = {"iopub.status.busy": "2026-12-03T10:00:00Z"}
    for cell in nb.cells:
        cell.id = f"saved-{cell.id}"
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.7"}
    nb.metadata["widgets"] = {"state": {}}
    nbformat.write(nb, file)
    saved = project.pipelines.run(str(code / "pipe.py"))
    assert saved.step("train").cache == "hit"

    old_digest = strip_notebook(file.read_bytes())[1]
    nbformat.write(notebook(code.parent, body="print('training, edited')"), file)
    edited = project.pipelines.run(str(code / "pipe.py"))
    assert edited.status == "succeeded"
    assert {s.name: s.cache for s in edited.steps} == {"train": "miss", "double": "hit"}
    (why,) = project.pipelines.explain(edited.id, "train")
    assert [(c.component, c.before, c.after) for c in why.changes] == [
        ("code", old_digest, strip_notebook(file.read_bytes())[1])
    ]


def test_stripping_keeps_what_a_notebook_does_and_drops_what_running_it_changes(
    tmp_path: Path,
) -> None:
    nb = notebook(tmp_path)
    text, digest = strip_notebook(nbformat.writes(nb))
    doc = json.loads(text)
    assert doc["nbformat_minor"] == 4 and all("id" not in c for c in doc["cells"])
    assert doc["cells"][1]["metadata"] == {"tags": ["parameters"]}

    ran = nbformat.from_dict(json.loads(nbformat.writes(nb)))
    ran.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="x\n")]
    ran.cells[2].execution_count = 3
    ran.metadata["language_info"] = {"name": "python", "version": "3.12.1"}
    assert strip_notebook(nbformat.writes(ran)) == (text, digest)

    untagged = nbformat.from_dict(json.loads(nbformat.writes(nb)))
    untagged.cells[1].metadata = {}
    assert strip_notebook(nbformat.writes(untagged))[1] != digest
    with pytest.raises(InvalidInputError, match="not a Jupyter notebook"):
        strip_notebook(b"{}")


def test_the_notebook_is_found_as_jupyter_server_and_vs_code_tell_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jupyter Server 2 names the session's path (relative to its root folder, while the
    kernel runs in the notebook's folder); VS Code sets `__vsc_ipynb_file__`; without
    either there is no notebook. Outside a kernel a run records no notebook at all."""

    class Shell:  # what locate_notebook reads of IPython's shell: the user namespace
        def __init__(self, names: dict[str, object]) -> None:
            self.user_ns = names

    (tmp_path / "work").mkdir()
    file = tmp_path / "work" / "a.ipynb"
    nbformat.write(notebook(tmp_path), file)
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert locate_notebook(Shell({})) == (None, None)
    assert locate_notebook(Shell({"__vsc_ipynb_file__": str(file)})) == (
        file.resolve(),
        "__vsc_ipynb_file__",
    )
    monkeypatch.setenv("JPY_SESSION_NAME", "work/a.ipynb")
    assert locate_notebook(Shell({})) == (file.resolve(), "JPY_SESSION_NAME")

    assert capture_notebook() is None  # pytest is no Jupyter kernel
    project = shipyard.init_project(tmp_path / "proj", actor="alice")
    try:
        with project.runs.start("plain") as run:
            pass
        assert "notebook" not in project.runs.get(run.id).code
    finally:
        project.close()


def test_without_the_notebooks_extra_the_error_says_what_to_install(
    flows: tuple[Project, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from shipyard.pipelines.notebook import NotebookRunner

    _, code = flows
    monkeypatch.setitem(sys.modules, "papermill", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'shipyard\[notebooks\]'"):
        NotebookRunner(code / "train.ipynb")(rows=1)
    monkeypatch.setitem(sys.modules, "nbformat", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'shipyard\[notebooks\]'"):
        strip_notebook(b"{}")


def test_a_notebook_step_must_declare_the_names_it_is_given(flows: tuple[Project, Path]) -> None:
    from shipyard.pipelines.notebook import NotebookStep
    from shipyard.pipelines.sources import load_source

    _, code = flows
    with pytest.raises(InvalidInputError, match=r"declares no parameter 'epochs'.*rows"):
        NotebookStep(code / "train.ipynb", ["rows", "epochs"])
    bad = code / "bad.yaml"
    bad.write_text(
        textwrap.dedent(
            """\
            steps:
              a: {notebook: train.ipynb, params: {epochs: 3}}
              b: {notebook: train.ipynb, call: "pipe.py:double"}
              c: {notebook: missing.ipynb}
            """
        )
    )
    with pytest.raises(InvalidInputError) as caught:
        load_source(str(bad)).build({})
    message = str(caught.value)
    assert "step a: notebook train.ipynb declares no parameter 'epochs'" in message
    assert "step b: give `call:` or `notebook:`, not both" in message
    assert "step c: no notebook missing.ipynb" in message


def test_the_documented_example_builds_its_notebook_step() -> None:
    """docs/examples/profile.yaml names a notebook that declares the parameters it is given
    (checked without starting a kernel)."""
    from shipyard.pipelines.notebook import NotebookStep
    from shipyard.pipelines.sources import load_source

    examples = Path(__file__).resolve().parents[2] / "docs" / "examples"
    dag = load_source(str(examples / "profile.yaml")).build({"column": "debt_to_income"})
    node = dag.nodes["profile"]
    assert isinstance(node.step, NotebookStep) and node.step.path == examples / "profile.ipynb"
    assert node.args["column"] == "debt_to_income"
    assert node.step.runner.parameters() == ["table", "column", "shipyard_outputs"]
