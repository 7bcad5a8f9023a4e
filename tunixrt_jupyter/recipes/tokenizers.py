"""Tokenizers: a byte tokenizer for the tiny model, the model's own one for real families.

Everything here is free of JAX so a dry-run can count tokens without it. Each tokenizer
exposes the few things the dataset builder needs: ``encode(text, add_bos=...)``, the
``eos_id`` appended after every document, and a ``pad_id`` that only fills unused slots
(padding is tracked by a separate mask, so a pad id equal to a real token is harmless).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


class TokenizerError(ValueError):
    """The model folder has no tokenizer we can load; the message says what to add."""


class Tokenizer(Protocol):
    name: str
    vocab_size: int
    bos_id: int | None
    eos_id: int
    pad_id: int

    def encode(self, text: str, *, add_bos: bool) -> list[int]: ...


class ByteTokenizer:
    """UTF-8 bytes shifted past three specials: pad=0, bos=1, eos=2, byte b -> b + 3.

    Needs no files, so the tiny model trains fully offline.
    """

    name = "bytes"
    pad_id, bos_id, eos_id = 0, 1, 2
    offset = 3
    vocab_size = 256 + offset + 1  # 260, as the tiny Llama3 config expects

    def encode(self, text: str, *, add_bos: bool) -> list[int]:
        ids = [b + self.offset for b in text.encode("utf-8")]
        return [self.bos_id, *ids] if add_bos else ids


class HFTokenizer:
    """A Hugging Face tokenizer loaded from a model folder (tokenizer.json & co)."""

    def __init__(self, tok: Any, name: str):
        self._tok = tok
        self.name = name
        self.vocab_size = len(tok)
        self.bos_id = tok.bos_token_id
        if tok.eos_token_id is None:
            raise TokenizerError(f"the tokenizer in {name} has no end-of-sequence token")
        self.eos_id = int(tok.eos_token_id)
        self.pad_id = int(tok.pad_token_id) if tok.pad_token_id is not None else self.eos_id

    def encode(self, text: str, *, add_bos: bool) -> list[int]:
        # add_special_tokens adds exactly what the model was trained with (BOS for Llama
        # and Gemma, nothing for Qwen), so use it for the first segment only.
        return list(self._tok(text, add_special_tokens=add_bos)["input_ids"])


class SentencePieceTokenizer:
    """A raw ``tokenizer.model`` (Gemma checkpoints from Kaggle ship only this)."""

    def __init__(self, path: Path):
        import sentencepiece as spm

        self._sp = spm.SentencePieceProcessor(model_file=str(path))
        self.name = str(path)
        self.vocab_size = int(self._sp.get_piece_size())
        bos = int(self._sp.bos_id())
        self.bos_id = bos if bos >= 0 else None
        self.eos_id = int(self._sp.eos_id())
        pad = int(self._sp.pad_id())
        self.pad_id = pad if pad >= 0 else 0

    def encode(self, text: str, *, add_bos: bool) -> list[int]:
        ids = list(self._sp.encode(text))
        return [self.bos_id, *ids] if add_bos and self.bos_id is not None else ids


def load_tokenizer(family: str, model_dir: str | Path | None = None, *,
                   local_only: bool = False) -> Tokenizer:
    """The tokenizer for ``family``: bytes for ``tiny``, else the one in ``model_dir``.

    ``local_only`` (dry-run) never touches the network.
    """
    if family == "tiny":
        return ByteTokenizer()
    if model_dir is None:
        raise TokenizerError("no model folder to load a tokenizer from")
    folder = Path(model_dir)
    if (folder / "tokenizer.json").is_file() or (folder / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=local_only)
        return HFTokenizer(tok, str(folder))
    sp_files = sorted(folder.glob("**/tokenizer.model"))
    if sp_files:
        return SentencePieceTokenizer(sp_files[0])
    raise TokenizerError(
        f"no tokenizer found in {folder}: expected tokenizer.json / tokenizer_config.json "
        "(Hugging Face) or tokenizer.model (SentencePiece); copy the model's tokenizer files "
        "into that folder"
    )
