"""Supervision overhead: the same tiny Tunix training, launched by tunixrt vs run bare.

Both sides build the same model, data and optimizer with the same recipe code and the
same Tunix ``PeftTrainer``; "bare" keeps Tunix's metrics in memory (a do-nothing backend)
and has no supervisor, event file, catalog or widget. Steady-state steps/s is measured
the same way on both sides: from the times at which ``train/loss`` was logged, skipping
the first steps (compilation). Runs alternate bare / tunixrt to spread machine noise.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import tunixrt_jupyter as tunixrt

STEPS = 60
SKIP = 5

BARE = textwrap.dedent("""
    import json, os, sys, time
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    from tunixrt_jupyter.config import load_config
    from tunixrt_jupyter.recipes import datasets, models, tokenizers
    from tunixrt_jupyter.worker import training
    from tunixrt_jupyter.worker.plan import optimizer_settings
    from tunix.sft import metrics_logger, peft_trainer

    steps = int(sys.argv[1])
    cfg = load_config({"training": {"max_steps": steps, "eval_every_n_steps": 10 ** 6,
                                    "checkpoint_every_n_steps": 10 ** 6}})
    times = []

    class Memory:
        def log_scalar(self, event, value, **kw):
            if event == "/train/loss":
                times.append(time.perf_counter())
        def close(self):
            pass

    mesh = training.make_mesh()
    model = models.build_tiny(cfg.training.seed, mesh)
    records = datasets.load_records(cfg.dataset)
    data = datasets.prepare(records, cfg.dataset, cfg.training, tokenizers.ByteTokenizer())
    tc = peft_trainer.TrainingConfig(
        max_steps=data.total_steps, eval_every_n_steps=10 ** 6,
        metrics_logging_options=metrics_logger.MetricsLoggerOptions(
            log_dir=sys.argv[2], backend_kwargs={"custom_backend": [Memory]}))
    opt = training.make_optimizer(optimizer_settings(cfg, data.total_steps))
    trainer = peft_trainer.PeftTrainer(model, opt, tc).with_gen_model_input_fn(
        training.model_inputs)
    with mesh:
        trainer.train(data.train_batches(), None)
    print(json.dumps(times))
""")


def rate(times: list[float]) -> float:
    steady = times[SKIP:]
    return (len(steady) - 1) / (steady[-1] - steady[0])


def bare_rate() -> float:
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        out = subprocess.run([sys.executable, "-c", BARE, str(STEPS), tmp], check=True,
                             capture_output=True, text=True).stdout
    return rate(json.loads(out.strip().splitlines()[-1]))


def tunixrt_rate(home: str) -> float:
    run = tunixrt.run(max_steps=STEPS, eval_every_n_steps=10 ** 6,
                      checkpoint_every_n_steps=10 ** 6, home=home)
    assert run.wait() == "completed", run
    loss = run.metrics("train/loss")
    times = [float(t) for t in (loss["t"] if hasattr(loss, "columns") else
                                [r["t"] for r in loss])]
    return rate(times)


def measure(rounds: int = 2) -> dict[str, float]:
    bare, supervised = [], []
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as home:
        Path(home).mkdir(exist_ok=True)
        for _ in range(rounds):
            bare.append(bare_rate())
            supervised.append(tunixrt_rate(home))
    b, s = statistics.median(bare), statistics.median(supervised)
    return {"bare_steps_per_s": b, "tunixrt_steps_per_s": s, "ratio": s / b}


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
