"""Training data: the built-in tiny corpus or a local JSONL file -> fixed-shape batches.

Two record shapes are accepted, decided by the first record:

* ``{"text": ...}``: documents are tokenized, joined with EOS and cut into windows of
  ``max_seq_length`` (packing wastes no compute on padding, which matters for short lines);
* ``{"prompt": ..., "completion": ...}``: one padded row per example, and the loss mask is
  set on completion tokens only, so the model learns to answer, not to repeat prompts.

Only NumPy is used (no JAX), so a dry-run validates data where JAX is not installed.
Batches are dicts of NumPy arrays: ``input_tokens``, ``input_mask`` (1 where a token is a
training target, Tunix's meaning) and ``valid`` (False on padding, for attention and
positions). The train order is a pure function of (seed, epoch), so when Tunix resumes and
skips the batches it already trained on, it skips exactly those.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import DatasetConfig, TrainingConfig
from .tokenizers import Tokenizer

TINY_CORPUS = Path(__file__).resolve().parent / "data" / "tiny_corpus.jsonl"
TEXT, PROMPT_COMPLETION = "text", "prompt_completion"

Batch = dict[str, np.ndarray]


class DatasetError(ValueError):
    """The dataset cannot be used; the message names the field or file and the fix."""


@dataclass
class Records:
    """Raw examples: ``(text,)`` or ``(prompt, completion)`` tuples."""

    kind: str
    rows: list[tuple[str, ...]]
    path: Path
    label: str


def load_records(dcfg: DatasetConfig) -> Records:
    """Read and check every record: file exists, each line is a JSON object with the fields."""
    if dcfg.source == "tiny":
        path, label = TINY_CORPUS, "the built-in tiny corpus"
        text_field, prompt_field, completion_field = "text", "prompt", "completion"
    else:
        if not dcfg.path:
            raise DatasetError("dataset.path is not set; point it at a .jsonl file")
        path, label = Path(dcfg.path), f"dataset.path {dcfg.path!r}"
        text_field = dcfg.text_field
        prompt_field, completion_field = dcfg.prompt_field, dcfg.completion_field
        if not path.exists():
            raise DatasetError(
                f"{label} does not exist; point dataset.path at a JSONL file (one JSON object "
                "per line, e.g. {\"text\": \"...\"}), or use dataset: tiny for the built-in corpus"
            )
        if not path.is_file():
            raise DatasetError(f"{label} is a folder, not a file; name the .jsonl file inside it")
    kind: str | None = None
    fields: tuple[str, ...] = ()
    rows: list[tuple[str, ...]] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            rec = _parse_line(line, lineno, label)
            if kind is None:
                kind, fields = _detect_kind(rec, lineno, label, text_field, prompt_field,
                                            completion_field)
            rows.append(_take_fields(rec, fields, lineno, label))
    if not rows:
        raise DatasetError(f"{label} has no records; add lines like {{\"text\": \"...\"}}")
    assert kind is not None
    return Records(kind=kind, rows=rows, path=path, label=label)


def _parse_line(line: str, lineno: int, label: str) -> dict[str, Any]:
    try:
        rec = json.loads(line)
    except ValueError as exc:
        raise DatasetError(
            f"{label} line {lineno} is not valid JSON ({exc}); each line must be one JSON "
            "object such as {\"text\": \"...\"}"
        ) from None
    if not isinstance(rec, dict):
        raise DatasetError(
            f"{label} line {lineno} is a JSON {type(rec).__name__}, not an object; write "
            "{\"text\": \"...\"} or {\"prompt\": \"...\", \"completion\": \"...\"} per line"
        )
    return rec


def _detect_kind(rec: dict, lineno: int, label: str, text_field: str, prompt_field: str,
                 completion_field: str) -> tuple[str, tuple[str, ...]]:
    if text_field in rec:
        return TEXT, (text_field,)
    if prompt_field in rec and completion_field in rec:
        return PROMPT_COMPLETION, (prompt_field, completion_field)
    keys = ", ".join(repr(k) for k in rec) or "none"
    raise DatasetError(
        f"{label} line {lineno} has no {text_field!r} field (dataset.text_field) and no "
        f"{prompt_field!r}/{completion_field!r} pair (dataset.prompt_field / "
        f"dataset.completion_field); its keys are {keys}. Set dataset.text_field (or the "
        "prompt/completion fields) to the key that holds the text"
    )


def _take_fields(rec: dict, fields: tuple[str, ...], lineno: int, label: str) -> tuple[str, ...]:
    out = []
    for name in fields:
        if name not in rec:
            raise DatasetError(
                f"{label} line {lineno} has no {name!r} field, unlike line 1; every record "
                f"needs the same fields ({', '.join(map(repr, fields))})"
            )
        value = rec[name]
        if not isinstance(value, str):
            raise DatasetError(
                f"{label} line {lineno} field {name!r} is a {type(value).__name__}, not text"
            )
        out.append(value)
    return tuple(out)


def split_records(records: Records, eval_fraction: float, seed: int
                  ) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    """Hold out ``eval_fraction`` of the records (at least one when the fraction is > 0)."""
    n = len(records.rows)
    n_eval = int(round(n * eval_fraction))
    if eval_fraction > 0 and n_eval == 0 and n >= 2:
        n_eval = 1
    perm = np.random.default_rng(seed).permutation(n)
    eval_idx = set(perm[:n_eval].tolist())
    train = [r for i, r in enumerate(records.rows) if i not in eval_idx]
    held = [r for i, r in enumerate(records.rows) if i in eval_idx]
    return train, held


@dataclass
class Sequences:
    """Fixed-length token rows ready for batching."""

    tokens: np.ndarray  # int32 [N, L]
    input_mask: np.ndarray  # int32 [N, L]: 1 where the token is a training target
    valid: np.ndarray  # bool [N, L]: False on padding
    dropped: int = 0  # prompt/completion examples whose completion did not fit

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def n_tokens(self) -> int:
        return int(self.valid.sum())


def to_sequences(rows: list[tuple[str, ...]], kind: str, tokenizer: Tokenizer,
                 max_len: int) -> Sequences:
    if kind == TEXT:
        return _pack_text(rows, tokenizer, max_len)
    return _prompt_completion(rows, tokenizer, max_len)


def _pack_text(rows: list[tuple[str, ...]], tok: Tokenizer, max_len: int) -> Sequences:
    stream: list[int] = []
    for (text,) in rows:
        stream.extend(tok.encode(text, add_bos=True))
        stream.append(tok.eos_id)
    n_rows = len(stream) // max_len
    if len(stream) - n_rows * max_len >= 2:  # a short tail still has one target token
        n_rows += 1
    tokens = np.full((n_rows, max_len), tok.pad_id, dtype=np.int32)
    valid = np.zeros((n_rows, max_len), dtype=bool)
    for r in range(n_rows):
        chunk = stream[r * max_len:(r + 1) * max_len]
        tokens[r, :len(chunk)] = chunk
        valid[r, :len(chunk)] = True
    return Sequences(tokens, valid.astype(np.int32), valid)


def _prompt_completion(rows: list[tuple[str, ...]], tok: Tokenizer, max_len: int) -> Sequences:
    tokens = np.full((len(rows), max_len), tok.pad_id, dtype=np.int32)
    mask = np.zeros((len(rows), max_len), dtype=np.int32)
    valid = np.zeros((len(rows), max_len), dtype=bool)
    keep = []
    for r, (prompt, completion) in enumerate(rows):
        p = tok.encode(prompt, add_bos=True)
        c = [*tok.encode(completion, add_bos=False), tok.eos_id]
        seq = (p + c)[:max_len]
        if len(p) >= len(seq):
            continue  # the prompt alone fills the window: nothing left to learn from
        tokens[r, :len(seq)] = seq
        valid[r, :len(seq)] = True
        mask[r, len(p):len(seq)] = 1
        keep.append(r)
    return Sequences(tokens[keep], mask[keep], valid[keep], dropped=len(rows) - len(keep))


def plan_total_steps(batches_per_epoch: int, max_steps: int | None,
                     num_epochs: int | None) -> int:
    """Steps to train: max_steps, num_epochs worth of batches, or the smaller of the two."""
    by_epochs = num_epochs * batches_per_epoch if num_epochs is not None else None
    candidates = [s for s in (max_steps, by_epochs) if s is not None]
    return min(candidates)


@dataclass
class PreparedData:
    """Tokenized train/eval splits plus the step plan derived from them."""

    records: Records
    train: Sequences
    eval: Sequences | None
    n_train_records: int
    n_eval_records: int
    batch_size: int
    max_seq_length: int
    total_steps: int
    num_epochs: int | None
    seed: int

    @property
    def batches_per_epoch(self) -> int:
        return len(self.train) // self.batch_size

    @property
    def n_eval_batches(self) -> int:
        return math.ceil(len(self.eval) / self.batch_size) if self.eval is not None else 0

    def train_batches(self) -> Iterator[Batch]:
        """Shuffled full batches, epoch after epoch (forever unless num_epochs is set)."""
        epoch = 0
        while self.num_epochs is None or epoch < self.num_epochs:
            perm = np.random.default_rng([self.seed, epoch]).permutation(len(self.train))
            for b in range(self.batches_per_epoch):
                yield _take(self.train, perm[b * self.batch_size:(b + 1) * self.batch_size])
            epoch += 1

    def eval_batches(self) -> list[Batch]:
        """All eval rows; the last batch is topped up with masked copies (one compiled shape)."""
        if self.eval is None:
            return []
        out = []
        n = len(self.eval)
        for start in range(0, n, self.batch_size):
            idx = np.arange(start, min(start + self.batch_size, n))
            batch = _take(self.eval, idx)
            short = self.batch_size - len(idx)
            if short:
                filler = _take(self.eval, np.zeros(short, dtype=np.int64))
                filler["input_mask"][:] = 0  # real tokens (no all-masked rows), no loss
                batch = {k: np.concatenate([batch[k], filler[k]]) for k in batch}
            out.append(batch)
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "source": self.records.label,
            "path": str(self.records.path),
            "format": self.records.kind,
            "records": len(self.records.rows),
            "train_records": self.n_train_records,
            "eval_records": self.n_eval_records,
            "max_seq_length": self.max_seq_length,
            "batch_size": self.batch_size,
            "train_sequences": len(self.train),
            "eval_sequences": len(self.eval) if self.eval is not None else 0,
            "train_tokens": self.train.n_tokens,
            "eval_tokens": self.eval.n_tokens if self.eval is not None else 0,
            "dropped_examples": self.train.dropped + (self.eval.dropped if self.eval else 0),
            "train_batches_per_epoch": self.batches_per_epoch,
            "eval_batches": self.n_eval_batches,
            "total_steps": self.total_steps,
            "epochs": round(self.total_steps / self.batches_per_epoch, 3),
        }


def _take(seqs: Sequences, idx: np.ndarray) -> Batch:
    return {"input_tokens": seqs.tokens[idx], "input_mask": seqs.input_mask[idx].copy(),
            "valid": seqs.valid[idx]}


def prepare(records: Records, dcfg: DatasetConfig, tcfg: TrainingConfig,
            tokenizer: Tokenizer) -> PreparedData:
    """Split, tokenize and plan; raises DatasetError when not even one batch fits."""
    train_rows, eval_rows = split_records(records, dcfg.eval_fraction, tcfg.seed)
    train = to_sequences(train_rows, records.kind, tokenizer, dcfg.max_seq_length)
    held = to_sequences(eval_rows, records.kind, tokenizer, dcfg.max_seq_length) \
        if eval_rows else None
    if held is not None and len(held) == 0:
        held = None
    if len(train) < tcfg.batch_size:
        raise DatasetError(
            f"{records.label} gives {len(train)} training sequence(s) of "
            f"dataset.max_seq_length={dcfg.max_seq_length} tokens ({len(train_rows)} records "
            f"after holding out dataset.eval_fraction={dcfg.eval_fraction}); one batch needs "
            f"training.batch_size={tcfg.batch_size}. Add more data, or lower "
            "training.batch_size, dataset.max_seq_length or dataset.eval_fraction"
        )
    per_epoch = len(train) // tcfg.batch_size
    return PreparedData(
        records=records, train=train, eval=held, n_train_records=len(train_rows),
        n_eval_records=len(eval_rows), batch_size=tcfg.batch_size,
        max_seq_length=dcfg.max_seq_length,
        total_steps=plan_total_steps(per_epoch, tcfg.max_steps, tcfg.num_epochs),
        num_epochs=tcfg.num_epochs, seed=tcfg.seed,
    )


def summarize_untokenized(records: Records, dcfg: DatasetConfig, tcfg: TrainingConfig,
                          reason: str) -> dict[str, Any]:
    """What a dry-run can say without the model's tokenizer (e.g. offline, not downloaded)."""
    train_rows, eval_rows = split_records(records, dcfg.eval_fraction, tcfg.seed)
    if records.kind == PROMPT_COMPLETION and len(train_rows) < tcfg.batch_size:
        raise DatasetError(
            f"{records.label} has {len(train_rows)} training example(s) after holding out "
            f"dataset.eval_fraction={dcfg.eval_fraction}; one batch needs "
            f"training.batch_size={tcfg.batch_size}. Add more data or lower training.batch_size"
        )
    return {
        "source": records.label, "path": str(records.path), "format": records.kind,
        "records": len(records.rows), "train_records": len(train_rows),
        "eval_records": len(eval_rows), "max_seq_length": dcfg.max_seq_length,
        "batch_size": tcfg.batch_size, "tokens": None,
        "note": f"token and batch counts need the model's tokenizer: {reason}",
    }
