"""Models: the tiny random-init Llama3 and real checkpoints loaded with Tunix's own loaders.

Real families are loaded the way Tunix's ``AutoModel`` does it, minus its interactive
logins (a background worker has no terminal): the checkpoint folder comes from
``model.path``, a Hugging Face snapshot (``huggingface_hub.snapshot_download``) or a Kaggle
download (``kagglehub.model_download``); Tunix's ``naming`` picks the ``ModelConfig``
preset from the model's name, and ``create_model_from_safe_tensors`` (or, for Gemma flax
checkpoints from Kaggle, Tunix's NNX conversion) builds the model on the mesh.

Nothing here imports JAX or Tunix at module level: ``resolve_model_dir`` and the naming
checks run in a dry-run too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import LoraConfig, ModelConfig

#: The tiny model of the reference script: 2 layers, d=64, byte vocabulary.
TINY_SHAPE: dict[str, Any] = {
    "num_layers": 2, "vocab_size": 260, "embed_dim": 64, "hidden_dim": 128, "num_heads": 4,
    "head_dim": 16, "num_kv_heads": 2, "rope_theta": 10_000, "norm_eps": 1e-5,
    "weight_tying": True,
}

#: tunixrt family -> Tunix model config categories (tunix.models.<category>) it may use.
FAMILY_CATEGORIES = {
    "tiny": ("llama3",), "llama3": ("llama3",), "gemma": ("gemma",), "gemma3": ("gemma3",),
    "qwen2": ("qwen2",), "qwen3": ("qwen3",),
}
HF_PATTERNS = ["*.safetensors", "*.json", "*.model", "*.txt", "*.tiktoken"]


class ModelError(ValueError):
    """The model cannot be found or built; the message says which field to change."""


@dataclass
class ModelSource:
    """Where a real model's files are: a local folder, plus how it got there."""

    folder: Path
    origin: str  # local | hf | kaggle
    handle: str | None  # the hub id / Kaggle handle when downloaded


def effective_source(mcfg: ModelConfig) -> str:
    """``auto`` -> local when a path is given, Kaggle for ``owner/model/framework/variation``."""
    if mcfg.source != "auto":
        return mcfg.source
    if mcfg.path:
        return "local"
    if mcfg.id and mcfg.id.count("/") >= 3:
        return "kaggle"
    return "hf"


def resolve_model_dir(mcfg: ModelConfig, *, download: bool = True) -> ModelSource:
    """The local folder with the checkpoint, downloading it when allowed and needed."""
    source = effective_source(mcfg)
    if source == "local":
        if not mcfg.path:
            raise ModelError("model.source is 'local' but model.path is not set")
        folder = Path(mcfg.path).expanduser()
        if not folder.exists():
            raise ModelError(
                f"model.path {mcfg.path!r} does not exist; point it at a folder holding the "
                "checkpoint (*.safetensors, config.json, tokenizer files), or set model.id "
                "to download one"
            )
        if not folder.is_dir():
            raise ModelError(f"model.path {mcfg.path!r} is a file; give the folder that holds it")
        return ModelSource(folder, "local", mcfg.id)
    if not mcfg.id:
        raise ModelError(f"model.source {source!r} needs model.id")
    if not download:
        raise ModelError(f"{mcfg.id!r} is not downloaded yet (dry-run does not download)")
    if source == "kaggle":
        return ModelSource(_kaggle_download(mcfg.id), "kaggle", mcfg.id)
    return ModelSource(_hf_download(mcfg.id), "hf", mcfg.id)


def _hf_download(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id=repo_id, allow_patterns=HF_PATTERNS,
                                      token=os.environ.get("HF_TOKEN") or None))
    except Exception as exc:
        raise ModelError(
            f"could not download model.id {repo_id!r} from Hugging Face ({exc}); check the id, "
            "and for gated models accept the licence and pass HF_TOKEN (run(..., env={"
            "'HF_TOKEN': ...}))"
        ) from exc


def _kaggle_download(handle: str) -> Path:
    try:
        import kagglehub
    except ImportError as exc:
        raise ModelError("model.source 'kaggle' needs kagglehub: pip install kagglehub") from exc
    try:
        return Path(kagglehub.model_download(handle))
    except Exception as exc:
        raise ModelError(
            f"could not download model.id {handle!r} from Kaggle ({exc}); accept the model's "
            "licence on kaggle.com and set KAGGLE_USERNAME / KAGGLE_KEY for the run"
        ) from exc


def tunix_model_name(mcfg: ModelConfig, src: ModelSource | None = None) -> str:
    """The HF-style name (``qwen2.5-0.5b``) Tunix's naming maps to a ModelConfig preset."""
    if mcfg.id and effective_source(mcfg) == "kaggle":
        return _kaggle_name(mcfg.id)
    if mcfg.id:
        return mcfg.id
    if src is not None:
        return src.folder.name
    return Path(mcfg.path or "").name


def _kaggle_name(handle: str) -> str:
    """``google/gemma-2/flax/gemma2-2b-it`` -> ``gemma-2-2b-it``; ``google/gemma/flax/2b``
    -> ``gemma-2b`` (Kaggle variations sometimes repeat the family)."""
    parts = handle.strip("/").split("/")
    model, variation = parts[1], parts[-1]
    squashed = model.replace("-", "")
    for prefix in (f"{squashed}-", f"{model}-"):
        if variation.startswith(prefix):
            variation = variation[len(prefix):]
    return f"{model}-{variation}"


def check_naming(mcfg: ModelConfig, name: str) -> Any:
    """Tunix's ModelNaming for ``name``; a clear error when it is unknown or another family."""
    from tunix.models import naming

    try:
        info = naming.ModelNaming(model_id=name)
    except ValueError as exc:
        raise ModelError(
            f"Tunix has no model config for {name!r} ({exc}); set model.id to the Hugging Face "
            "id (e.g. Qwen/Qwen2.5-0.5B) or name the model.path folder like it"
        ) from exc
    allowed = FAMILY_CATEGORIES.get(mcfg.family, ())
    if info.model_config_category not in allowed:
        raise ModelError(
            f"model.family is {mcfg.family!r} but {name!r} is a Tunix "
            f"{info.model_config_category!r} model; set model.family: "
            f"{info.model_config_category}"
        )
    return info


def build_tiny(seed: int, mesh: Any) -> Any:
    """A random-init 2-layer Llama3 with the byte vocabulary: trains offline in seconds."""
    from flax import nnx
    from tunix.models.llama3 import model as llama3_lib

    @nnx.jit
    def create() -> Any:
        # One compiled init program instead of dozens of eagerly dispatched random ops:
        # faster, and the persistent compilation cache makes it near free the next time.
        return llama3_lib.Llama3(llama3_lib.ModelConfig(**TINY_SHAPE), rngs=nnx.Rngs(seed))

    with mesh:
        return create()


def build_real(mcfg: ModelConfig, src: ModelSource, mesh: Any, *, seed: int,
               cache_dir: Path) -> Any:
    """Load a real checkpoint with Tunix's loaders (safetensors, or Gemma flax via NNX)."""
    import jax.numpy as jnp
    from tunix.models import automodel

    name = tunix_model_name(mcfg, src)
    info = check_naming(mcfg, name)
    dtype = jnp.bfloat16 if mcfg.dtype == "bfloat16" else jnp.float32
    has_safetensors = any(src.folder.glob("*.safetensors"))
    if not has_safetensors and src.origin == "kaggle" and info.model_config_category == "gemma":
        model, _ = automodel.create_gemma_model_with_nnx_conversion(
            model_name=info.model_name, ckpt_path=str(src.folder),
            intermediate_ckpt_dir=str(cache_dir / "nnx" / info.model_name),
            rng_seed=seed, mesh=mesh, model_path=src.handle,
        )
        return model
    if not has_safetensors:
        raise ModelError(
            f"no *.safetensors files in {src.folder}; tunixrt loads Hugging Face safetensors "
            "checkpoints (or Gemma flax checkpoints from Kaggle)"
        )
    config = automodel.call_model_config(info.model_name)
    with mesh:
        return automodel.create_model_from_safe_tensors(
            info.model_name, str(src.folder), config, mesh, dtype=dtype,
        )


def apply_lora(model: Any, lora: LoraConfig, mesh: Any, *, seed: int, reshard: bool) -> Any:
    """Wrap the target projections with qwix LoRA adapters (only they will train)."""
    import qwix
    from flax import nnx

    provider = qwix.LoraProvider(
        module_path="|".join(f".*{name}" for name in lora.target_modules),
        rank=lora.rank, alpha=lora.alpha,
    )
    with mesh:
        lora_model = qwix.apply_lora_to_model(
            model, provider, rngs=nnx.Rngs(seed + 1), **model.get_model_input()
        )
    if reshard:  # real checkpoints are sharded; the new adapter weights must follow
        from tunix.rl import reshard as reshard_lib

        lora_model = reshard_lib.reshard_model_to_mesh(lora_model, mesh)
    return lora_model


def count_params(model: Any) -> tuple[int, int]:
    """(base model parameters, LoRA adapter parameters)."""
    import jax
    from flax import nnx

    def total(kind: Any) -> int:
        return int(sum(x.size for x in jax.tree.leaves(nnx.state(model, kind))))

    lora = total(nnx.LoRAParam)
    return total(nnx.Param) - lora, lora  # LoRAParam is a subclass of Param
