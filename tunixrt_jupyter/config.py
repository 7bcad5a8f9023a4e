"""RunConfig: one validated, resolved run configuration.

A config comes from a YAML file or text, a dict, or another RunConfig, plus ``key=value``
dotted overrides (``training.learning_rate=3e-4``). Validation collects *every* bad field
and raises one :class:`ConfigError` that names each field, the value given, and the fix,
so a user never has to read a YAML or dataclass traceback.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

MODEL_FAMILIES = ("tiny", "llama3", "gemma", "gemma3", "qwen2", "qwen3")
MODEL_SOURCES = ("auto", "local", "hf", "kaggle")
DATASET_SOURCES = ("tiny", "jsonl")
MODES = ("local", "dry-run")
EXECUTORS = ("subprocess", "inline", "kernel")
PLATFORMS = ("auto", "cpu", "gpu", "tpu")
DTYPES = ("float32", "bfloat16")
DEFAULT_LORA_TARGETS = (
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
)


class ConfigError(ValueError):
    """A config with one or more bad fields; ``problems`` holds ``(field, message)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        lines = [f"  - {name}: {msg}" for name, msg in problems]
        n = len(problems)
        head = f"Invalid tunixrt config ({n} problem{'s' if n != 1 else ''}):"
        super().__init__("\n".join([head, *lines]))


@dataclass
class LoraConfig:
    """LoRA adapters applied with qwix; only adapter weights train when enabled."""

    enabled: bool = False
    rank: int = 8
    alpha: float = 16.0
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_LORA_TARGETS))


@dataclass
class ModelConfig:
    """Which model to train. ``tiny`` is a random-init Llama3 that needs no download."""

    family: str = "tiny"
    id: str | None = None
    path: str | None = None
    source: str = "auto"
    dtype: str = "float32"
    lora: LoraConfig = field(default_factory=LoraConfig)

    @property
    def label(self) -> str:
        return self.id or (Path(self.path).name if self.path else self.family)


@dataclass
class DatasetConfig:
    """Training text: the built-in tiny corpus or a local JSONL file."""

    source: str = "tiny"
    path: str | None = None
    text_field: str = "text"
    prompt_field: str = "prompt"
    completion_field: str = "completion"
    max_seq_length: int = 64
    eval_fraction: float = 0.1

    @property
    def label(self) -> str:
        return Path(self.path).name if self.path else self.source


@dataclass
class TrainingConfig:
    """Optimisation settings handed to Tunix's PeftTrainer."""

    max_steps: int | None = 40
    num_epochs: int | None = None
    batch_size: int = 8
    learning_rate: float = 3e-3
    warmup_steps: int = 4
    weight_decay: float = 0.0
    eval_every_n_steps: int = 10
    checkpoint_every_n_steps: int = 20
    max_checkpoints_to_keep: int = 2
    seed: int = 0
    resume: bool = True
    resume_from: str | None = None  # another run's id or checkpoints folder to start from


@dataclass
class RunSettings:
    """How and where the run executes."""

    mode: str = "local"
    kind: str = "config"  # "code": the user's own cell (%%tunix_run --code), not a recipe
    executor: str = "subprocess"
    timeout_s: float | None = None
    platform: str = "auto"
    max_concurrent: int = 1
    grace_s: float = 10.0


@dataclass
class RunConfig:
    """The whole resolved config of one run (what ``config.yaml`` in its folder holds)."""

    name: str | None = None
    tags: list[str] = field(default_factory=list)
    notes: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    run: RunSettings = field(default_factory=RunSettings)

    @property
    def display_name(self) -> str:
        return self.name or f"{self.model.label}-{self.dataset.label}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def with_overrides(self, overrides: Mapping[str, Any] | None = None, **kw: Any) -> RunConfig:
        """A new validated config with dotted-key overrides applied."""
        return load_config(self, overrides={**(overrides or {}), **kw})


# ---------------------------------------------------------------------------------------
# Loading


def load_config(
    source: RunConfig | Mapping[str, Any] | str | os.PathLike | None = None,
    overrides: Mapping[str, Any] | list[str] | None = None,
    *,
    base_dir: str | os.PathLike | None = None,
) -> RunConfig:
    """Build a validated RunConfig from a path, YAML text, dict or RunConfig, plus overrides.

    ``overrides`` is a mapping of dotted keys (``{"training.max_steps": 20}``) or a list of
    ``key=value`` strings as typed on a command line; string values are parsed as YAML
    scalars so ``3e-4`` is a float and ``true`` a bool. Relative dataset/model paths are
    resolved against ``base_dir`` (the YAML file's folder when loading a file).
    """
    problems: list[tuple[str, str]] = []
    raw, file_dir = _read_source(source, problems)
    if problems:
        raise ConfigError(problems)
    raw = _normalise_shorthands(raw)
    for key, value in _parse_overrides(overrides, problems):
        _set_dotted(raw, key, value, problems)
    if problems:
        raise ConfigError(problems)
    cfg = _build(RunConfig, raw, "", problems)
    if cfg is not None:
        _validate(cfg, problems)
        _resolve_paths(cfg, Path(base_dir) if base_dir else file_dir)
    if problems:
        raise ConfigError(problems)
    assert cfg is not None
    return cfg


def _read_source(source: Any, problems: list) -> tuple[dict, Path | None]:
    if source is None:
        return {}, None
    if isinstance(source, RunConfig):
        return source.to_dict(), None
    if isinstance(source, Mapping):
        return copy.deepcopy(dict(source)), None
    looks_like_path = isinstance(source, str) and "\n" not in source and (
        source.strip().endswith((".yaml", ".yml"))
    )
    if isinstance(source, os.PathLike) or looks_like_path:
        path = Path(source).expanduser()
        if not path.is_file():
            problems.append(("config", f"file {str(path)!r} not found; pass an existing YAML path"))
            return {}, None
        return _parse_yaml(path.read_text(), str(path), problems), path.resolve().parent
    if isinstance(source, str):
        return _parse_yaml(source, "config text", problems), None
    problems.append((
        "config",
        f"got a {type(source).__name__}; pass a YAML path or text, a dict, or a RunConfig",
    ))
    return {}, None


def _parse_yaml(text: str, where: str, problems: list) -> dict:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        pos = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "unparseable YAML"
        problems.append(("config", f"{where} is not valid YAML{pos}: {problem}; fix the syntax"))
        return {}
    if data is None:
        return {}
    if not isinstance(data, dict):
        problems.append((
            "config",
            f"{where} must be a YAML mapping of sections (model:, dataset:, training:, run:), "
            f"not a {type(data).__name__}",
        ))
        return {}
    return data


def _normalise_shorthands(raw: dict) -> dict:
    """Accept ``model: tiny`` / ``model: org/name`` and ``dataset: tiny`` / ``dataset: x.jsonl``."""
    raw = dict(raw)
    model = raw.get("model")
    if isinstance(model, str):
        raw["model"] = _model_shorthand(model)
    dataset = raw.get("dataset")
    if isinstance(dataset, str):
        raw["dataset"] = _dataset_shorthand(dataset)
    if isinstance(raw.get("tags"), str):
        raw["tags"] = [t.strip() for t in raw["tags"].split(",") if t.strip()]
    return raw


def _model_shorthand(text: str) -> dict:
    if text in MODEL_FAMILIES:
        return {"family": text}
    if os.path.exists(os.path.expanduser(text)):
        return {"path": text, "family": _guess_family(text)}
    if "/" not in text:
        return {"family": text}  # not a family, path or org/name id: validation names it
    return {"id": text, "family": _guess_family(text)}


def _guess_family(text: str) -> str:
    low = text.lower()
    for fam, keys in (
        ("gemma3", ("gemma-3", "gemma3")),
        ("gemma", ("gemma",)),
        ("qwen3", ("qwen3",)),
        ("qwen2", ("qwen2", "qwen")),
        ("llama3", ("llama",)),
    ):
        if any(k in low for k in keys):
            return fam
    return "llama3"


def _dataset_shorthand(text: str) -> dict:
    if text in DATASET_SOURCES and text != "jsonl":
        return {"source": text}
    return {"source": "jsonl", "path": text}


def _parse_overrides(overrides: Any, problems: list) -> list[tuple[str, Any]]:
    import yaml

    if not overrides:
        return []
    if isinstance(overrides, Mapping):
        items = list(overrides.items())
    else:
        items = []
        for item in overrides:
            if not isinstance(item, str) or "=" not in item:
                problems.append((
                    str(item), "override must look like key=value, e.g. training.max_steps=20",
                ))
                continue
            key, _, text = item.partition("=")
            try:
                value = yaml.safe_load(text) if text.strip() else None
            except yaml.YAMLError:
                value = text
            items.append((key.strip(), value))
    out = []
    for key, value in items:
        key = str(key).replace("__", ".")
        if key in ("model", "dataset") and isinstance(value, str):
            value = _model_shorthand(value) if key == "model" else _dataset_shorthand(value)
        out.append((key, value))
    return out


def split_config_args(items: list[str]) -> tuple[str | None, list[str]]:
    """Command-line words -> (the one CONFIG path, if any; the ``key=value`` overrides)."""
    config, overrides = None, []
    for item in items:
        if "=" in item:
            overrides.append(item)
        elif config is None:
            config = item
        else:
            raise ConfigError([("config", f"two configs given ({config!r}, {item!r}); pass one")])
    return config, overrides


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``key=value`` words as typed on a command line -> typed values (``3e-4`` a float)."""
    problems: list[tuple[str, str]] = []
    parsed = dict(_parse_overrides(list(items), problems))
    if problems:
        raise ConfigError(problems)
    return parsed


def _set_dotted(raw: dict, key: str, value: Any, problems: list) -> None:
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        elif not isinstance(nxt, dict):
            problems.append((key, f"cannot set a sub-field of {part!r}, which is not a section"))
            return
        node = nxt
    if isinstance(value, dict) and isinstance(node.get(parts[-1]), dict):
        node[parts[-1]].update(value)
    else:
        node[parts[-1]] = value


def _build(cls: type, data: Any, prefix: str, problems: list) -> Any:
    """Turn a nested dict into dataclasses, recording unknown keys and wrong types."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        problems.append((
            prefix.rstrip(".") or "config",
            f"expected a mapping, got {data!r}; write it as a YAML section",
        ))
        return None
    known = {f.name: f for f in fields(cls)}
    for key in data:
        if key not in known:
            hint = _closest(str(key), known)
            problems.append((
                f"{prefix}{key}",
                f"unknown field{f'; did you mean {hint!r}?' if hint else ''} "
                f"(allowed: {', '.join(known)})",
            ))
    kwargs = {}
    for name, _f in known.items():
        if name not in data:
            continue
        value = data[name]
        sub_cls = _nested_type(cls, name)
        if sub_cls is not None:
            built = _build(sub_cls, value, f"{prefix}{name}.", problems)
            if built is not None:
                kwargs[name] = built
            continue
        ok, coerced, expected = _coerce(cls, name, value)
        if ok:
            kwargs[name] = coerced
        else:
            problems.append((f"{prefix}{name}", f"got {value!r}; expected {expected}"))
    return cls(**kwargs)


_NESTED = {
    (RunConfig, "model"): ModelConfig,
    (RunConfig, "dataset"): DatasetConfig,
    (RunConfig, "training"): TrainingConfig,
    (RunConfig, "run"): RunSettings,
    (ModelConfig, "lora"): LoraConfig,
}

_INT_OR_NONE = {("TrainingConfig", "max_steps"), ("TrainingConfig", "num_epochs")}
_FLOAT_OR_NONE = {("RunSettings", "timeout_s")}
_STR_OR_NONE = {("ModelConfig", "id"), ("ModelConfig", "path"), ("DatasetConfig", "path"),
                ("RunConfig", "name"), ("TrainingConfig", "resume_from")}
_STR_LIST = {("RunConfig", "tags"), ("LoraConfig", "target_modules")}


def _nested_type(cls: type, name: str) -> type | None:
    return _NESTED.get((cls, name))


def _coerce(cls: type, name: str, value: Any) -> tuple[bool, Any, str]:
    key = (cls.__name__, name)
    default = next(f for f in fields(cls) if f.name == name)
    if key in _STR_LIST:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int)) for v in value):
            return True, [str(v) for v in value], ""
        return False, None, "a list of strings (YAML list or comma-separated text)"
    if key in _INT_OR_NONE:
        if value is None:
            return True, None, ""
        return _as_int(value, "a whole number or null")
    if key in _FLOAT_OR_NONE:
        if value is None:
            return True, None, ""
        return _as_float(value, "a number of seconds or null")
    if key in _STR_OR_NONE:
        if value is None:
            return True, None, ""
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return True, str(value), ""
        return False, None, "text or null"
    proto = default.default if default.default is not dataclasses.MISSING else None
    if isinstance(proto, bool):
        if isinstance(value, bool):
            return True, value, ""
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no"):
            return True, value.lower() in ("true", "yes"), ""
        return False, None, "true or false"
    if isinstance(proto, int):
        return _as_int(value, "a whole number")
    if isinstance(proto, float):
        return _as_float(value, "a number")
    if isinstance(proto, str):
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return True, str(value), ""
        return False, None, "text"
    return True, value, ""


def _as_int(value: Any, expected: str) -> tuple[bool, Any, str]:
    if isinstance(value, bool):
        return False, None, expected
    if isinstance(value, int):
        return True, value, ""
    if isinstance(value, float) and value.is_integer():
        return True, int(value), ""
    if isinstance(value, str):
        try:
            return True, int(value.strip()), ""
        except ValueError:
            pass
    return False, None, expected


def _as_float(value: Any, expected: str) -> tuple[bool, Any, str]:
    if isinstance(value, bool):
        return False, None, expected
    if isinstance(value, (int, float)):
        return True, float(value), ""
    if isinstance(value, str):
        try:
            return True, float(value.strip()), ""
        except ValueError:
            pass
    return False, None, expected


def _closest(word: str, options: Mapping[str, Any]) -> str | None:
    import difflib

    match = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return match[0] if match else None


def _validate(cfg: RunConfig, problems: list) -> None:
    """Range and choice checks, each naming the field and the fix."""

    def choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
        if value not in allowed:
            problems.append((name, f"got {value!r}; choose one of {', '.join(allowed)}"))

    def positive(name: str, value: float | None, *, allow_zero: bool = False) -> None:
        if value is None:
            return
        if value < 0 or (value == 0 and not allow_zero) or value != value:
            need = "0 or more" if allow_zero else "greater than 0"
            problems.append((name, f"got {value!r}; must be {need}"))

    m, d, t, r = cfg.model, cfg.dataset, cfg.training, cfg.run
    choice("model.family", m.family, MODEL_FAMILIES)
    choice("model.source", m.source, MODEL_SOURCES)
    choice("model.dtype", m.dtype, DTYPES)
    if m.family != "tiny" and not (m.id or m.path):
        problems.append((
            "model.id",
            f"family {m.family!r} needs model.id (a Hugging Face or Kaggle id) or model.path "
            "(a local checkpoint folder); or use family: tiny for the built-in offline model",
        ))
    if m.source == "local" and not m.path:
        problems.append(("model.path", "source 'local' needs model.path set to a folder"))
    positive("model.lora.rank", m.lora.rank)
    positive("model.lora.alpha", m.lora.alpha)
    if m.lora.enabled and not m.lora.target_modules:
        problems.append(("model.lora.target_modules", "empty; list module names such as q_proj"))
    choice("dataset.source", d.source, DATASET_SOURCES)
    if d.source == "jsonl" and not d.path:
        problems.append(("dataset.path", "source 'jsonl' needs dataset.path (a .jsonl file)"))
    positive("dataset.max_seq_length", d.max_seq_length)
    if not 0 <= d.eval_fraction < 1:
        problems.append((
            "dataset.eval_fraction", f"got {d.eval_fraction!r}; must be in [0, 1), e.g. 0.1",
        ))
    if t.max_steps is None and t.num_epochs is None:
        problems.append((
            "training.max_steps", "set training.max_steps or training.num_epochs (both are null)",
        ))
    positive("training.max_steps", t.max_steps)
    positive("training.num_epochs", t.num_epochs)
    positive("training.batch_size", t.batch_size)
    positive("training.learning_rate", t.learning_rate)
    positive("training.warmup_steps", t.warmup_steps, allow_zero=True)
    positive("training.weight_decay", t.weight_decay, allow_zero=True)
    positive("training.eval_every_n_steps", t.eval_every_n_steps)
    positive("training.checkpoint_every_n_steps", t.checkpoint_every_n_steps)
    positive("training.max_checkpoints_to_keep", t.max_checkpoints_to_keep)
    if t.seed < 0:
        problems.append(("training.seed", f"got {t.seed!r}; must be 0 or more"))
    choice("run.mode", r.mode, MODES)
    choice("run.kind", r.kind, ("config", "code"))
    choice("run.executor", r.executor, EXECUTORS)
    choice("run.platform", r.platform, PLATFORMS)
    positive("run.timeout_s", r.timeout_s)
    positive("run.max_concurrent", r.max_concurrent)
    positive("run.grace_s", r.grace_s, allow_zero=True)


def _resolve_paths(cfg: RunConfig, base: Path | None) -> None:
    """Make local paths absolute so the worker (another cwd) finds them."""
    base = base or Path.cwd()
    if cfg.dataset.path:
        p = Path(cfg.dataset.path).expanduser()
        cfg.dataset.path = str(p if p.is_absolute() else (base / p).resolve())
    if cfg.model.path:
        p = Path(cfg.model.path).expanduser()
        cfg.model.path = str(p if p.is_absolute() else (base / p).resolve())


def config_from_dict(data: Mapping[str, Any]) -> RunConfig:
    """Rebuild a stored (already resolved) config, e.g. a run folder's config.yaml."""
    return load_config(dict(data))


def is_config(obj: Any) -> bool:
    return is_dataclass(obj) and isinstance(obj, RunConfig)


def _leaf_paths(cls: type = RunConfig, prefix: str = "") -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in fields(cls):
        sub = _nested_type(cls, f.name)
        if sub is not None:
            for leaf, paths in _leaf_paths(sub, f"{prefix}{f.name}.").items():
                out.setdefault(leaf, []).extend(paths)
        else:
            out.setdefault(f.name, []).append(f"{prefix}{f.name}")
    return out


def expand_override_keys(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Let ``run(max_steps=20)`` mean ``training.max_steps``: unique field names need no section.

    Dotted keys and section names (``model="tiny"``) pass through; an unknown or ambiguous
    short name raises a ConfigError naming the full keys to use instead.
    """
    leaves = _leaf_paths()
    sections = {f.name for f in fields(RunConfig)}
    out: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for key, value in overrides.items():
        key = key.replace("__", ".")
        if "." in key or key in sections:
            out[key] = value
            continue
        paths = leaves.get(key, [])
        if len(paths) == 1:
            out[paths[0]] = value
        elif paths:
            problems.append((key, f"ambiguous; write one of {', '.join(paths)}"))
        else:
            hint = _closest(key, leaves)
            problems.append((
                key,
                f"unknown setting{f'; did you mean {hint!r}?' if hint else ''} "
                "(use a field name such as max_steps, or a dotted key such as "
                "training.learning_rate)",
            ))
    if problems:
        raise ConfigError(problems)
    return out
