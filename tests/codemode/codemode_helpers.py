"""Helpers for the code-mode tests: cell bodies, the magic's parsed flags, waiting.

``tiny_sft_cell`` is the core of ``shared/reference/tiny_sft.py`` (a random-init tiny
Llama3 trained with Tunix's PeftTrainer on CPU, offline) as one notebook cell, written as
a user would: no tunixrt imports.

(The root ``conftest`` cannot be imported by name from here: this folder has its own.)
"""

from __future__ import annotations

import argparse

from tunixrt_testutil import needs_tunix, wait_for  # noqa: F401 (re-exported)

TINY_SFT = '''\
import os
os.environ.setdefault("JAX_PLATFORMS", "cpu")
import warnings
warnings.filterwarnings("ignore", message=".*`with mesh:` context manager")

from flax import nnx
import jax
import numpy as np
import optax
from tunix.models.llama3 import model as llama3_lib
from tunix.sft import metrics_logger, peft_trainer
from tunix.sft import utils as sft_utils

STEPS = {steps}
PAD, BOS, EOS, OFFSET = 0, 1, 2, 3
TEXT = "Beautiful is better than ugly. Explicit is better than implicit. " * 40


def make_batches(seq_len, batch_size, n_batches, seed):
    ids = np.array([BOS] + [b + OFFSET for b in TEXT.encode()] + [EOS], dtype=np.int32)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_batches):
        starts = rng.integers(0, len(ids) - seq_len, size=batch_size)
        toks = np.stack([ids[s:s + seq_len] for s in starts])
        out.append(peft_trainer.TrainingInput(
            input_tokens=toks, input_mask=(toks != PAD).astype(np.int32)))
    return out


def gen_model_input_fn(x):
    pad_mask = x.input_tokens != PAD
    return {{
        "input_tokens": x.input_tokens,
        "input_mask": x.input_mask,
        "positions": sft_utils.build_positions_from_mask(pad_mask),
        "attention_mask": sft_utils.make_causal_attn_mask(pad_mask),
    }}


cfg = llama3_lib.ModelConfig(
    num_layers=2, vocab_size=260, embed_dim=64, hidden_dim=128, num_heads=4, head_dim=16,
    num_kv_heads=2, rope_theta=10_000, norm_eps=1e-5, weight_tying=True)
mesh = jax.make_mesh((1, 1), ("fsdp", "tp"), axis_types=(jax.sharding.AxisType.Auto,) * 2)
with mesh:
    model = llama3_lib.Llama3(cfg, rngs=nnx.Rngs(0))
schedule = optax.warmup_cosine_decay_schedule(
    init_value=0.0, peak_value=3e-3, warmup_steps=2, decay_steps=STEPS, end_value=3e-4)
optimizer = optax.inject_hyperparams(optax.adamw)(learning_rate=schedule, weight_decay=0.0)
training_config = peft_trainer.TrainingConfig(
    eval_every_n_steps={eval_every},
    max_steps=STEPS,
    metrics_logging_options=metrics_logger.MetricsLoggerOptions(log_dir="work/tb"),
)
trainer = peft_trainer.PeftTrainer(model, optimizer, training_config)
trainer = trainer.with_gen_model_input_fn(gen_model_input_fn)
{hooks}
print("starting training", flush=True)
with mesh:
    trainer.train(make_batches(64, 8, STEPS, seed=0), make_batches(64, 8, 2, seed=1))
final_loss = float(trainer.metrics_logger.get_metric_history("", "loss", "train")[-1])
print(f"final loss {{final_loss:.4f}}")
'''


USER_HOOKS = """\
from tunix.sft import hooks


class StepRecorder(hooks.TrainingHooks):
    def __init__(self):
        self.steps = []

    def on_train_start(self, train_ctx): pass
    def on_train_end(self, train_ctx): pass
    def on_train_step_start(self, train_ctx): pass
    def on_train_step_end(self, train_ctx, train_step, train_loss):
        self.steps.append(int(train_step))
    def on_eval_step_start(self, train_ctx): pass
    def on_eval_step_end(self, train_ctx, eval_loss): pass


recorder = StepRecorder()
trainer.with_training_hooks(recorder)
"""


def tiny_sft_cell(steps: int = 12, eval_every: int = 6, user_hooks: bool = False) -> str:
    """The tiny SFT cell; ``user_hooks`` adds the user's own TrainingHooks (``recorder``)."""
    return TINY_SFT.format(steps=steps, eval_every=eval_every,
                           hooks=USER_HOOKS if user_hooks else "")


def code_args(**fields) -> argparse.Namespace:
    """What ``%%tunix_run --code`` parses its line into."""
    base = {"name": None, "executor": None, "inputs": None, "outputs": None,
            "keep_kernel": False, "wait": False, "timeout": None, "tag": None}
    base.update(fields)
    return argparse.Namespace(**base)
