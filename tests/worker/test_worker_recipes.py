"""Unit tests for the worker's pure parts: data shaping, tokenizers, model-source checks,
the metrics backend and the timeout watchdog. No training here (see test_worker_training)."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from tunixrt_testutil import needs_tunix, wait_for

from tunixrt_jupyter.config import load_config
from tunixrt_jupyter.events import EventWriter, append_event, iter_events
from tunixrt_jupyter.recipes import datasets
from tunixrt_jupyter.recipes.models import (
    ModelError,
    _kaggle_name,
    effective_source,
    resolve_model_dir,
)
from tunixrt_jupyter.recipes.tokenizers import ByteTokenizer, TokenizerError, load_tokenizer
from tunixrt_jupyter.stop import stop_reason
from tunixrt_jupyter.worker.metrics_backend import EventsBackend
from tunixrt_jupyter.worker.signals import StopFlag, TimeoutWatchdog


def _cfg(**overrides):
    return load_config(None, overrides=overrides)


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_tiny_corpus_is_a_few_hundred_text_records():
    records = datasets.load_records(_cfg().dataset)
    assert records.kind == datasets.TEXT and 200 <= len(records.rows) <= 1000


def test_text_is_packed_into_full_windows():
    tok = ByteTokenizer()
    rows = [("abc",), ("defgh",)]
    seqs = datasets.to_sequences(rows, datasets.TEXT, tok, 4)
    stream = [1, *[b + 3 for b in b"abc"], 2, 1, *[b + 3 for b in b"defgh"], 2]  # 12 tokens
    assert seqs.tokens.tolist() == [stream[0:4], stream[4:8], stream[8:12]]
    assert seqs.valid.all() and seqs.input_mask.all() and seqs.n_tokens == 12


def test_prompt_completion_trains_on_completion_tokens_only():
    tok = ByteTokenizer()
    seqs = datasets.to_sequences([("Q?", "A!")], datasets.PROMPT_COMPLETION, tok, 10)
    prompt, completion = [1, *[b + 3 for b in b"Q?"]], [*[b + 3 for b in b"A!"], 2]
    assert seqs.tokens[0].tolist() == prompt + completion + [0] * 4
    assert seqs.input_mask[0].tolist() == [0, 0, 0, 1, 1, 1, 0, 0, 0, 0]
    assert seqs.valid[0].tolist() == [True] * 6 + [False] * 4


def test_prompt_that_fills_the_window_is_dropped():
    seqs = datasets.to_sequences([("x" * 20, "y"), ("q", "a")], datasets.PROMPT_COMPLETION,
                                 ByteTokenizer(), 8)
    assert len(seqs) == 1 and seqs.dropped == 1


def test_prompt_completion_jsonl_is_detected(tmp_path):
    path = _jsonl(tmp_path / "pc.jsonl", [{"prompt": "p", "completion": "c"}] * 3)
    records = datasets.load_records(_cfg(dataset=path).dataset)
    assert records.kind == datasets.PROMPT_COMPLETION and records.rows[0] == ("p", "c")


def test_bad_json_line_is_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok"}\n{"text": oops}\n')
    with pytest.raises(datasets.DatasetError, match="line 2 is not valid JSON"):
        datasets.load_records(_cfg(dataset=str(path)).dataset)


def test_inconsistent_records_are_named(tmp_path):
    path = _jsonl(tmp_path / "mixed.jsonl", [{"text": "a"}, {"txt": "b"}])
    with pytest.raises(datasets.DatasetError, match="line 2 has no 'text' field"):
        datasets.load_records(_cfg(dataset=path).dataset)


def test_eval_split_and_batches_are_fixed_shape():
    cfg = _cfg(**{"training.batch_size": 4, "dataset.max_seq_length": 16})
    data = datasets.prepare(datasets.load_records(cfg.dataset), cfg.dataset, cfg.training,
                            ByteTokenizer())
    assert data.n_eval_records > 0 and data.n_train_records + data.n_eval_records == \
        len(data.records.rows)
    shapes = {b["input_tokens"].shape for b in data.eval_batches()}
    assert shapes == {(4, 16)}
    first = [b["input_tokens"] for b, _ in zip(data.train_batches(), range(3), strict=False)]
    again = [b["input_tokens"] for b, _ in zip(data.train_batches(), range(3), strict=False)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))  # resumable


def test_steps_from_epochs_and_max_steps():
    assert datasets.plan_total_steps(10, None, 3) == 30
    assert datasets.plan_total_steps(10, 7, 3) == 7
    assert datasets.plan_total_steps(10, 50, None) == 50


def test_missing_local_model_path_is_a_clear_error(tmp_path):
    missing = tmp_path / "no-such-model"
    cfg = _cfg(**{"model.family": "qwen2", "model.path": str(missing)})
    assert effective_source(cfg.model) == "local"
    with pytest.raises(ModelError, match="model.path .* does not exist"):
        resolve_model_dir(cfg.model)


def test_model_source_auto():
    assert effective_source(_cfg(model="Qwen/Qwen2.5-0.5B").model) == "hf"
    assert effective_source(_cfg(**{"model.family": "gemma",
                                    "model.id": "google/gemma/flax/2b-it"}).model) == "kaggle"


def test_kaggle_handles_map_to_tunix_names():
    assert _kaggle_name("google/gemma/flax/2b-it") == "gemma-2b-it"
    assert _kaggle_name("google/gemma-2/flax/gemma2-2b-it") == "gemma-2-2b-it"


@needs_tunix
def test_model_family_mismatch_is_named():
    from tunixrt_jupyter.recipes.models import check_naming

    cfg = _cfg(**{"model.family": "llama3", "model.id": "Qwen/Qwen2.5-0.5B"})
    with pytest.raises(ModelError, match="set model.family: qwen2"):
        check_naming(cfg.model, cfg.model.id)
    assert check_naming(cfg.model.__class__(family="qwen2", id="Qwen/Qwen2.5-0.5B"),
                        "Qwen/Qwen2.5-0.5B").model_config_id == "qwen2p5_0p5b"


@needs_tunix
def test_real_family_folder_without_safetensors_is_a_clear_error(tmp_path):
    from tunixrt_jupyter.recipes.models import build_real

    folder = tmp_path / "Qwen2.5-0.5B"
    folder.mkdir()
    cfg = _cfg(**{"model.family": "qwen2", "model.path": str(folder)})
    src = resolve_model_dir(cfg.model)
    with pytest.raises(ModelError, match="no \\*.safetensors files"):
        build_real(cfg.model, src, mesh=None, seed=0, cache_dir=tmp_path / "cache")


def test_model_folder_without_tokenizer_is_a_clear_error(tmp_path):
    with pytest.raises(TokenizerError, match="no tokenizer found"):
        load_tokenizer("qwen2", tmp_path)


def test_metrics_backend_writes_metrics_and_progress(tmp_path):
    writer = EventWriter(tmp_path)
    backend = EventsBackend(writer, total_steps=40)
    backend.log_scalar("/jax/compilation_time", 1.0, step=None)
    backend.log_scalar("/train/loss", np.float32(2.5), step=3)
    backend.log_scalar("/eval/loss", np.float32(2.75), step=3)
    writer.close()
    got = [(e["type"], e.get("name"), e.get("value"), e.get("step"), e.get("total"))
           for e in iter_events(tmp_path)]
    assert got == [("metric", "train/loss", 2.5, 3, None), ("progress", None, None, 3, 40),
                   ("metric", "eval/loss", 2.75, 3, None)]
    assert backend.factory() is backend and backend.last["train/loss"] == 2.5


def test_watchdog_requests_timeout_then_ends_a_stuck_run(tmp_path):
    append_event(tmp_path, "status", status="running")
    flag, exited = StopFlag(), threading.Event()
    codes: list[int] = []

    def hard_exit(code: int) -> None:
        codes.append(code)
        exited.set()

    TimeoutWatchdog(tmp_path, flag, timeout_s=0.05, grace_s=0.0, hard_exit=hard_exit).start()
    wait_for(exited.is_set, timeout=30, what="the watchdog's hard exit")
    assert flag.is_set() and stop_reason(tmp_path) == "timeout" and codes == [1]
    final = [e for e in iter_events(tmp_path) if e["type"] == "status"][-1]
    assert final["status"] == "timeout" and "run.grace_s" in final["error"]


def test_watchdog_never_ends_a_shared_process(tmp_path):
    append_event(tmp_path, "status", status="running")
    flag = StopFlag(in_process=True)
    dog = TimeoutWatchdog(tmp_path, flag, timeout_s=0.05, grace_s=0.0,
                          hard_exit=lambda code: pytest.fail("hard exit in a shared process"))
    dog.start()
    dog._thread.join(timeout=30)
    assert flag.is_set() and stop_reason(tmp_path) == "timeout"
    assert [e["status"] for e in iter_events(tmp_path) if e["type"] == "status"] == ["running"]


def test_watchdog_disarmed_when_the_run_finishes(tmp_path):
    flag = StopFlag()
    dog = TimeoutWatchdog(tmp_path, flag, timeout_s=3600, grace_s=1).start()
    dog.finish()
    dog._thread.join(timeout=30)
    assert not dog._thread.is_alive() and not flag.is_set()
