"""Pipelines: cached step graphs in plain Python, run inline, on a local pool or on Ray.

>>> import keel
>>> @keel.step
... def prepare(rows: int = 1000): ...
>>> @keel.pipeline
... def churn(C: float = 1.0):
...     return train(prepare(), C=C)
>>> churn.run(C=0.5)
"""

from keel.pipelines.graph import Graph, Node
from keel.pipelines.inputs import DatasetInput, dataset
from keel.pipelines.pipeline import Pipeline, StepState, load_pipeline, pipeline, pipeline_status
from keel.pipelines.runner import PipelineResult
from keel.pipelines.step import Step, step
from keel.pipelines.sweep import SweepResult, sweep
from keel.pipelines.task import StepOutcome

__all__ = [
    "DatasetInput", "Graph", "Node", "Pipeline", "PipelineResult", "Step", "StepOutcome",
    "StepState", "SweepResult", "dataset", "load_pipeline", "pipeline", "pipeline_status",
    "step", "sweep",
]
