"""Tunix PeftTrainer wiring: everything in the worker that imports JAX and Tunix.

Importing this module imports JAX, so ``main`` sets ``JAX_PLATFORMS`` first and treats an
ImportError here as "Tunix is not installed". The run is plain Tunix SFT: a model (tiny or
a real checkpoint), optional qwix LoRA, optax adamw with an injected warmup-cosine learning
rate, an ``Auto``-typed mesh (jax >= 0.9 defaults to Explicit axes, which PeftTrainer's
optimizer sharding rejects) and ``PeftTrainer.train`` under the legacy ``with mesh:``.

Stopping: Tunix's loop ends when the train iterator is exhausted, then closes the trainer,
which writes the last metrics and force-saves a checkpoint of the current step. So the stop
flag is checked where the loop asks for the next batch (``StopAwareBatches``): no exception
ever crosses a JAX call or a checkpoint write, and resuming later restarts from that step.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import optax
import orbax.checkpoint as ocp
from absl import logging as absl_logging
from tunix.sft import metrics_logger, peft_trainer
from tunix.sft import utils as sft_utils

from ..config import RunConfig
from ..events import EventWriter
from ..recipes import datasets, models, tokenizers
from .checkpoints import CheckpointEvents, seed_from, set_aside
from .manifest import write_manifest
from .metrics_backend import EventsBackend
from .plan import CHECKPOINTS_DIR, mesh_settings, optimizer_settings, trainer_settings
from .signals import StopFlag, check_stop


@dataclass
class TrainOutcome:
    start_step: int
    final_step: int
    total_steps: int
    stopped: bool
    manifest: dict[str, Any] = field(default_factory=dict)


class StopAwareBatches:
    """Yields batches until the stop flag is set: Tunix then ends its loop cleanly."""

    def __init__(self, batches: Iterable[datasets.Batch], flag: StopFlag):
        self._batches, self._flag = batches, flag

    def __iter__(self) -> Iterator[datasets.Batch]:
        for batch in self._batches:
            if self._flag.is_set():
                return
            yield batch


def model_inputs(batch: datasets.Batch) -> dict[str, Any]:
    """Batch -> the keyword arguments of Tunix's default loss (runs inside the jitted step)."""
    valid = batch["valid"]
    return {
        "input_tokens": batch["input_tokens"],
        "input_mask": batch["input_mask"],
        "positions": sft_utils.build_positions_from_mask(valid),
        "attention_mask": sft_utils.make_causal_attn_mask(valid),
    }


def _not_orbax_info(record: logging.LogRecord) -> bool:
    return "orbax" not in record.pathname or record.levelno >= logging.WARNING


def quiet_logs() -> None:
    """Keep Tunix's own INFO lines (stderr.log) but drop orbax's chatter and a jax warning.

    Idempotent: an inline run calls it again in the same process for every run.
    """
    absl_logging.set_verbosity(absl_logging.INFO)
    absl_logger = logging.getLogger("absl")
    if _not_orbax_info not in absl_logger.filters:
        absl_logger.addFilter(_not_orbax_info)
    warnings.filterwarnings("ignore", message=".*`with mesh:` context manager")


def enable_compile_cache(home: Path) -> None:
    """Keep compiled XLA programs in ``<home>/cache/jax`` across runs.

    Re-running the same model shape (the usual notebook loop) then skips compilation: for
    the tiny model that is most of the start-up time. A cache the user configured
    (``JAX_COMPILATION_CACHE_DIR``) or disabled (``JAX_ENABLE_COMPILATION_CACHE=false``)
    is left alone. Entries are keyed by program, JAX version and device, so sharing is safe.
    """
    if jax.config.jax_compilation_cache_dir:
        return
    jax.config.update("jax_compilation_cache_dir", str(home / "cache" / "jax"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)


def make_mesh() -> jax.sharding.Mesh:
    spec = mesh_settings(jax.device_count())
    return jax.make_mesh(tuple(spec["shape"]), tuple(spec["axis_names"]),
                         axis_types=(jax.sharding.AxisType.Auto,) * len(spec["shape"]))


def make_optimizer(settings: dict[str, Any]) -> optax.GradientTransformation:
    s = dict(settings["schedule"])
    s.pop("name")
    schedule = optax.warmup_cosine_decay_schedule(**s)
    return optax.inject_hyperparams(optax.adamw)(learning_rate=schedule,
                                                 weight_decay=settings["weight_decay"])


def save_policy(every: int) -> Any:
    """Every ``every`` steps (and on preemption), without orbax's default extra save of the
    first step: for a real model that is gigabytes written for nothing."""
    policies = ocp.checkpoint_managers
    return policies.AnySavePolicy([policies.FixedIntervalPolicy(every),
                                   policies.PreemptionCheckpointingPolicy()])


def make_training_config(settings: dict[str, Any], backend: EventsBackend,
                         log_dir: Path) -> peft_trainer.TrainingConfig:
    ckpt = settings["checkpointing_options"]
    return peft_trainer.TrainingConfig(
        max_steps=settings["max_steps"],
        eval_every_n_steps=settings["eval_every_n_steps"],
        checkpoint_root_directory=settings["checkpoint_root_directory"],
        checkpointing_options=ocp.CheckpointManagerOptions(
            save_decision_policy=save_policy(ckpt["save_interval_steps"]),
            max_to_keep=ckpt["max_to_keep"]),
        metrics_logging_options=metrics_logger.MetricsLoggerOptions(
            log_dir=str(log_dir), backend_kwargs={"custom_backend": [backend.factory]}),
        data_sharding_axis=tuple(settings["data_sharding_axis"]),
    )


def build_model(cfg: RunConfig, mesh: Any, home: Path, flag: StopFlag
                ) -> tuple[Any, tokenizers.Tokenizer, dict[str, Any]]:
    """The model and its tokenizer; real checkpoints are downloaded first if needed."""
    if cfg.model.family == "tiny":
        return (models.build_tiny(cfg.training.seed, mesh), tokenizers.ByteTokenizer(),
                {"tunix_model": "llama3 (tiny, random init)"})
    src = models.resolve_model_dir(cfg.model)
    check_stop(flag)
    tokenizer = tokenizers.load_tokenizer(cfg.model.family, src.folder)
    model = models.build_real(cfg.model, src, mesh, seed=cfg.training.seed,
                              cache_dir=home / "cache")
    return model, tokenizer, {"folder": str(src.folder), "origin": src.origin,
                              "tunix_name": models.tunix_model_name(cfg.model, src)}


def run_training(cfg: RunConfig, run_dir: Path, records: datasets.Records, flag: StopFlag,
                 writer: EventWriter, platform_info: dict[str, Any]) -> TrainOutcome:
    """Build everything, train with PeftTrainer, and report how far it got."""
    check_stop(flag)
    quiet_logs()
    home = run_dir.parent.parent
    enable_compile_cache(home)
    mesh = make_mesh()
    model, tokenizer, model_info = build_model(cfg, mesh, home, flag)
    check_stop(flag)
    data = datasets.prepare(records, cfg.dataset, cfg.training, tokenizer)
    if cfg.model.lora.enabled:
        model = models.apply_lora(model, cfg.model.lora, mesh, seed=cfg.training.seed,
                                  reshard=cfg.model.family != "tiny")
    n_params, n_lora = models.count_params(model)
    trainable = n_lora if cfg.model.lora.enabled else n_params
    for key, value in (("params", n_params), ("lora_params", n_lora),
                       ("trainable_params", trainable), ("tokenizer", tokenizer.name),
                       ("total_steps", data.total_steps)):
        writer.emit("info", key=key, value=value)
    check_stop(flag)

    ckpt_root = run_dir / CHECKPOINTS_DIR
    if not cfg.training.resume:
        moved = set_aside(ckpt_root)
        if moved is not None:
            writer.emit("info", key="checkpoints_set_aside", value=str(moved),
                        message=f"training.resume is false: old checkpoints moved to {moved}")
    if cfg.training.resume_from:
        seeded = seed_from(Path(cfg.training.resume_from), ckpt_root)
        if seeded is not None:
            writer.emit("info", key="seeded_from", value=str(seeded),
                        message=f"starting from {cfg.training.resume_from} (step {seeded.name})")
    settings = trainer_settings(cfg, run_dir, data.total_steps)
    opt_settings = optimizer_settings(cfg, data.total_steps)
    backend = EventsBackend(writer, data.total_steps)
    trainer = peft_trainer.PeftTrainer(
        model, make_optimizer(opt_settings),
        make_training_config(settings, backend, run_dir / "artifacts" / "metrics"),
    ).with_gen_model_input_fn(model_inputs)
    trainer.checkpoint_manager = CheckpointEvents(trainer.checkpoint_manager, writer, ckpt_root)
    start = trainer.train_steps
    if start:
        writer.emit("info", key="resumed_from_step", value=start,
                    message=f"resumed from step {start}")
    writer.emit("progress", step=start, total=data.total_steps)

    sections: dict[str, Any] = {
        "dataset": data.summary(),
        "tunix": {"training_config": settings, "optimizer": opt_settings,
                  "mesh": mesh_settings(jax.device_count())},
        "runtime": {**platform_info, **model_info, "params": n_params,
                    "lora_params": n_lora, "trainable_params": trainable},
    }
    write_manifest(run_dir, cfg, writer, **sections)

    t0 = time.perf_counter()
    with mesh:
        trainer.train(StopAwareBatches(data.train_batches(), flag), data.eval_batches() or None)
    wall = time.perf_counter() - t0
    final = trainer.train_steps
    done = final - start
    sections["result"] = {
        "start_step": start, "final_step": final, "steps_this_attempt": done,
        "train_wall_s": round(wall, 3),
        "steps_per_s": round(done / wall, 3) if wall > 0 and done else None,
        "first_train_loss": backend.first.get("train/loss"),
        "last_train_loss": backend.last.get("train/loss"),
        "last_eval_loss": backend.last.get("eval/loss"),
    }
    return TrainOutcome(start_step=start, final_step=final, total_steps=data.total_steps,
                        stopped=flag.is_set() and final < data.total_steps, manifest=sections)
