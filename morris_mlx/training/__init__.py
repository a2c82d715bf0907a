"""Training, once for every backend: the plan, the loop (harness.py), checkpoints, metrics and provenance.

A backend supplies a `StepTrainer` (trainer.py); `train_adapter` does the rest.
"""

from morris_mlx.training.checkpoints import checkpoint_dir, checkpoints, prune_checkpoints
from morris_mlx.training.events import TrainCallback, TrainEvent, TrainResult
from morris_mlx.training.harness import train_adapter
from morris_mlx.training.plan import TrainPlan, learning_rate_at, make_plan
from morris_mlx.training.records import MetricsLog, read_metrics, write_provenance
from morris_mlx.training.trainer import StepTrainer, TrainingData

__all__ = [
    "MetricsLog",
    "StepTrainer",
    "TrainCallback",
    "TrainEvent",
    "TrainPlan",
    "TrainResult",
    "TrainingData",
    "checkpoint_dir",
    "checkpoints",
    "learning_rate_at",
    "make_plan",
    "prune_checkpoints",
    "read_metrics",
    "train_adapter",
    "write_provenance",
]
