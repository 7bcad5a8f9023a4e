"""The Tunix settings a run uses, as plain data (no Tunix import).

One function turns a RunConfig into the values handed to Tunix's ``TrainingConfig`` and to
the optax optimizer. ``training.py`` builds the real objects from these dicts and the
manifest records the same dicts, so a dry-run shows exactly what a real run would use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import RunConfig

CHECKPOINTS_DIR = "checkpoints"


def trainer_settings(cfg: RunConfig, run_dir: Path, total_steps: int) -> dict[str, Any]:
    t = cfg.training
    return {
        "max_steps": total_steps,
        "eval_every_n_steps": t.eval_every_n_steps,
        "checkpoint_root_directory": str(run_dir / CHECKPOINTS_DIR),
        "checkpointing_options": {
            "save_interval_steps": t.checkpoint_every_n_steps,
            "max_to_keep": t.max_checkpoints_to_keep,
        },
        "data_sharding_axis": ["fsdp"],
        "metrics_logging_options": {"custom_backend": "tunixrt events.jsonl backend"},
    }


def optimizer_settings(cfg: RunConfig, total_steps: int) -> dict[str, Any]:
    """adamw with a warmup-cosine schedule (injected, so Tunix logs the learning rate)."""
    t = cfg.training
    warmup = min(t.warmup_steps, max(total_steps - 1, 0))
    return {
        "name": "adamw",
        "weight_decay": t.weight_decay,
        "schedule": {
            "name": "warmup_cosine_decay",
            "init_value": 0.0,
            "peak_value": t.learning_rate,
            "warmup_steps": warmup,
            "decay_steps": max(total_steps, warmup + 1),
            "end_value": t.learning_rate * 0.1,
        },
    }


def mesh_settings(device_count: int) -> dict[str, Any]:
    """Data-parallel FSDP over every device; ``tp`` kept at 1 (Tunix's sharding names)."""
    return {"shape": [device_count, 1], "axis_names": ["fsdp", "tp"], "axis_types": "Auto"}
