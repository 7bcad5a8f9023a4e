"""Dry-run: check the dataset and write the manifest without training (and without JAX).

A dry-run must work where JAX and Tunix are not installed (a laptop preparing a TPU job),
so this module imports neither. Token and batch counts need the model's tokenizer: the
tiny model's is built in; a real model's is used only if it is already on disk (a dry-run
never downloads a checkpoint).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import RunConfig
from ..events import EventWriter
from ..recipes import datasets, models, tokenizers
from .manifest import write_manifest
from .plan import optimizer_settings, trainer_settings


def local_tokenizer(cfg: RunConfig) -> tuple[tokenizers.Tokenizer | None, str]:
    """The tokenizer if it can be had offline, else None and why not."""
    if cfg.model.family == "tiny":
        return tokenizers.ByteTokenizer(), ""
    source = models.effective_source(cfg.model)
    if source == "local":
        folder = models.resolve_model_dir(cfg.model, download=False).folder  # clear error
    elif source == "hf" and cfg.model.id:
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(repo_id=cfg.model.id, local_files_only=True,
                                            allow_patterns=models.HF_PATTERNS))
        except Exception:
            return None, f"{cfg.model.id!r} is not in the Hugging Face cache yet"
    else:
        return None, f"{cfg.model.id!r} is downloaded from Kaggle when the run starts"
    try:
        return tokenizers.load_tokenizer(cfg.model.family, folder, local_only=True), ""
    except Exception as exc:
        return None, f"could not load the tokenizer from {folder}: {exc}"


def run_dry(cfg: RunConfig, run_dir: Path, writer: EventWriter) -> dict[str, Any]:
    """Validate, write ``manifest.yaml``; returns the dataset summary."""
    records = datasets.load_records(cfg.dataset)
    tokenizer, why_not = local_tokenizer(cfg)
    if tokenizer is not None:
        data = datasets.prepare(records, cfg.dataset, cfg.training, tokenizer)
        summary, total = data.summary(), data.total_steps
    else:
        summary = datasets.summarize_untokenized(records, cfg.dataset, cfg.training, why_not)
        total = cfg.training.max_steps
    sections = {
        "dataset": summary,
        "tunix": {
            "training_config": trainer_settings(cfg, run_dir, total) if total else None,
            "optimizer": optimizer_settings(cfg, total) if total else None,
            "note": None if total else "total steps follow from num_epochs once tokenized",
        },
    }
    write_manifest(run_dir, cfg, writer, **sections)
    return summary
