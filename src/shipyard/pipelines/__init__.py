"""Pipelines: typed ``@step`` functions called by a ``@pipeline`` function (or listed in a
YAML file), cached by content, recorded as tracked runs, run locally or on Dask.

>>> from shipyard import pipeline, step
>>> @step
... def load(rows: int) -> list[int]:
...     return list(range(rows))
>>> @step
... def total(values: list[int]) -> int:
...     return sum(values)
>>> @pipeline
... def demo(rows: int = 10) -> None:
...     total(load(rows))

``shipyard pipeline run pipeline.py:demo --param rows=20`` runs it; see docs/pipelines.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard.pipelines.dag import Input, Output, Pipeline, Step, dataset, model, pipeline, step

if TYPE_CHECKING:
    from shipyard.pipelines.cache import KeyChange
    from shipyard.pipelines.notebook import NotebookStep, notebook_step
    from shipyard.pipelines.records import PipelineRun, StepExplanation, StepRun
    from shipyard.pipelines.service import Pipelines
    from shipyard.pipelines.values import ModelOutput
    from shipyard.pipelines.worker import StepContext, current

__all__ = [
    "Input",
    "KeyChange",
    "ModelOutput",
    "NotebookStep",
    "Output",
    "Pipeline",
    "PipelineRun",
    "Pipelines",
    "Step",
    "StepContext",
    "StepExplanation",
    "StepRun",
    "current",
    "dataset",
    "model",
    "notebook_step",
    "pipeline",
    "step",
]

_LAZY = {
    "KeyChange": "shipyard.pipelines.cache",
    "ModelOutput": "shipyard.pipelines.values",
    "NotebookStep": "shipyard.pipelines.notebook",
    "notebook_step": "shipyard.pipelines.notebook",
    "PipelineRun": "shipyard.pipelines.records",
    "StepExplanation": "shipyard.pipelines.records",
    "StepRun": "shipyard.pipelines.records",
    "Pipelines": "shipyard.pipelines.service",
    "StepContext": "shipyard.pipelines.worker",
    "current": "shipyard.pipelines.worker",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'shipyard.pipelines' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
