"""RunConfig: every bad value gets one clear error naming field, value and fix."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tunixrt_jupyter.config import (
    ConfigError,
    RunConfig,
    expand_override_keys,
    load_config,
)


def problems(source=None, overrides=None) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load_config(source, overrides=overrides)
    return dict(info.value.problems)


def test_defaults_are_a_tiny_offline_run():
    cfg = load_config()
    assert cfg.model.family == "tiny"
    assert cfg.dataset.source == "tiny"
    assert cfg.run.mode == "local" and cfg.run.executor == "subprocess"
    assert cfg.training.max_steps == 40


def test_yaml_text_file_dict_and_runconfig_agree(tmp_path):
    text = "name: a\nmodel: {lora: {enabled: true, rank: 4}}\ntraining: {max_steps: 7}\n"
    path = tmp_path / "c.yaml"
    path.write_text(text)
    from_text = load_config(text)
    from_file = load_config(path)
    from_dict = load_config(yaml.safe_load(text))
    again = load_config(from_dict)
    assert from_text == from_file == from_dict == again
    assert from_text.model.lora.rank == 4 and from_text.training.max_steps == 7


def test_dotted_overrides_parse_scalars():
    cfg = load_config(None, ["training.learning_rate=3e-4", "run.timeout_s=60",
                             "model.lora.enabled=true", "tags=a,b"])
    assert cfg.training.learning_rate == pytest.approx(3e-4)
    assert cfg.run.timeout_s == 60.0
    assert cfg.model.lora.enabled is True
    assert cfg.tags == ["a", "b"]


def test_short_field_names_expand_and_ambiguity_is_named():
    assert expand_override_keys({"max_steps": 3, "model": "tiny"}) == {
        "training.max_steps": 3, "model": "tiny"}
    with pytest.raises(ConfigError) as info:
        expand_override_keys({"path": "x"})
    assert "model.path" in str(info.value) and "dataset.path" in str(info.value)
    with pytest.raises(ConfigError) as info:
        expand_override_keys({"max_stepz": 3})
    assert "did you mean 'max_steps'" in str(info.value)


def test_shorthands_for_model_and_dataset(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "hi"}\n')
    cfg = load_config({"model": "google/gemma-2-2b", "dataset": str(data)})
    assert cfg.model.family == "gemma" and cfg.model.id == "google/gemma-2-2b"
    assert cfg.dataset.source == "jsonl" and cfg.dataset.path == str(data)


def test_relative_dataset_path_resolves_against_the_yaml_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    cfg_path = tmp_path / "sub" / "c.yaml"
    cfg_path.write_text("dataset: {source: jsonl, path: data.jsonl}\n")
    cfg = load_config(cfg_path)
    assert cfg.dataset.path == str(tmp_path / "sub" / "data.jsonl")


@pytest.mark.parametrize("key,value,needle", [
    ("training.max_steps", -1, "greater than 0"),
    ("training.max_steps", "many", "whole number"),
    ("training.batch_size", 0, "greater than 0"),
    ("training.learning_rate", "fast", "a number"),
    ("training.learning_rate", 0, "greater than 0"),
    ("training.warmup_steps", -2, "0 or more"),
    ("training.eval_every_n_steps", 0, "greater than 0"),
    ("training.checkpoint_every_n_steps", -5, "greater than 0"),
    ("training.seed", -1, "0 or more"),
    ("training.resume", "maybe", "true or false"),
    ("model.family", "gpt5", "choose one of"),
    ("model.source", "ftp", "choose one of"),
    ("model.dtype", "int3", "choose one of"),
    ("model.lora.rank", 0, "greater than 0"),
    ("model.lora.alpha", -1, "greater than 0"),
    ("dataset.source", "web", "choose one of"),
    ("dataset.max_seq_length", 0, "greater than 0"),
    ("dataset.eval_fraction", 1.5, "[0, 1)"),
    ("run.mode", "remote", "choose one of"),
    ("run.executor", "ray", "choose one of"),
    ("run.platform", "quantum", "choose one of"),
    ("run.timeout_s", -3, "greater than 0"),
    ("run.max_concurrent", 0, "greater than 0"),
    ("tags", {"a": 1}, "list of strings"),
])
def test_each_bad_field_is_named_with_value_and_fix(key, value, needle):
    found = problems(None, {key: value})
    assert key in found, found
    assert needle in found[key]
    if not isinstance(value, dict):
        assert repr(value) in found[key] or str(value) in found[key]


def test_all_bad_fields_are_listed_at_once():
    found = problems({"training": {"batch_size": -1, "max_stepz": 2},
                      "run": {"mode": "x", "executor": "y"}})
    assert set(found) == {"training.batch_size", "training.max_stepz", "run.mode",
                          "run.executor"}


def test_non_tiny_family_needs_an_id_or_path():
    found = problems({"model": {"family": "gemma3"}})
    assert "model.id" in found and "family: tiny" in found["model.id"]


def test_jsonl_needs_a_path():
    assert "dataset.path" in problems({"dataset": {"source": "jsonl"}})


def test_broken_yaml_names_the_line():
    found = problems("training:\n  max_steps: [1,\n")
    assert "line" in found["config"] and "not valid YAML" in found["config"]


def test_yaml_that_is_not_a_mapping():
    assert "mapping" in problems("- a\n- b\n")["config"]


def test_missing_file_is_clear(tmp_path):
    assert "not found" in problems(str(tmp_path / "nope.yaml"))["config"]


def test_error_message_is_one_paragraph_without_traceback_text():
    with pytest.raises(ConfigError) as info:
        load_config({"training": {"batch_size": "x"}})
    text = str(info.value)
    assert text.startswith("Invalid tunixrt config (1 problem)")
    assert "Traceback" not in text and "File \"" not in text


def test_round_trip_through_yaml():
    cfg = load_config({"name": "x", "tags": ["t"], "model": {"lora": {"enabled": True}}})
    assert load_config(cfg.to_yaml()) == cfg
    assert isinstance(cfg, RunConfig)


# Property: any random config either loads or raises ConfigError (never anything else).
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=True), st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8)
known_keys = st.sampled_from([
    "name", "tags", "notes", "model", "dataset", "training", "run", "model.family", "model.id",
    "model.lora.rank", "model.lora", "dataset.path", "dataset.max_seq_length",
    "training.max_steps", "training.num_epochs", "training.learning_rate", "run.mode",
    "run.timeout_s", "run.platform", "bogus", "training.bogus",
])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(known_keys, values, max_size=6))
def test_random_configs_give_only_clear_errors(overrides):
    try:
        cfg = load_config(None, overrides=overrides)
    except ConfigError as exc:
        assert exc.problems and all(isinstance(f, str) and m for f, m in exc.problems)
        return
    assert isinstance(cfg, RunConfig)
    assert load_config(cfg.to_dict()) == cfg


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_random_yaml_text_gives_only_clear_errors(text):
    try:
        load_config(text + "\n")
    except ConfigError:
        pass


def test_a_mistyped_model_word_is_named_not_downloaded():
    found = problems({"model": "tinny"})
    assert "model.family" in found and "'tinny'" in found["model.family"]
