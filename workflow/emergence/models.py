"""Model checkpoints: materialise each configured model and describe it in a manifest.

A model comes from a source (the `source` key of its config entry), one class per source in
`emergence.sources`; this module holds what every source shares: checking a checkpoint folder,
counting its parameters, writing the manifest, building a folder atomically, and the tiny Llama with
its byte tokenizer that the built-here sources use.

The manifest records what inference and fitting need: the resolved path, a SHA that pins the
weights, file hashes, and parameter counts (total and non-embedding).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from emergence.errors import EmergenceError
from emergence.io import atomic_path, file_sha256, stable_hash, write_json

HASHED_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json")
# Files of a checkpoint folder that no engine reads: everything else (config, tokenizer files, generation
# config, chat template, remote code, ...) is part of the model's identity.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".h5", ".msgpack", ".ckpt")
NOT_READ = ("training.json", "README.md", "LICENSE", "LICENSE.txt", ".gitattributes")


class ModelError(EmergenceError, ValueError):
    """A model entry or checkpoint that cannot be used."""


def check_checkpoint(path: Path, name: str) -> None:
    """Refuse a folder that is not a loadable checkpoint, naming what is missing."""
    if not path.is_dir():
        raise ModelError(f"model {name}: checkpoint folder {path} does not exist")
    if not (path / "config.json").is_file():
        raise ModelError(f"model {name}: {path} has no config.json")
    if not any(p.suffix == ".safetensors" for p in path.iterdir()):
        raise ModelError(
            f"model {name}: {path} has no *.safetensors weights (re-save other formats with save_pretrained)"
        )


def count_parameters(path: Path) -> dict[str, int]:
    """Total and non-embedding parameter counts, read from safetensors headers (no weights loaded).

    Non-embedding excludes the input embedding and, when untied, the output embedding, following
    Kaplan et al. (2020).
    """
    from safetensors import safe_open

    total = embedding = 0
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise ModelError(f"{path}: parameter counts need *.safetensors weights")
    for file in files:
        with safe_open(file, framework="np") as weights:
            for key in weights.keys():  # noqa: SIM118 (a safetensors handle, not a dict)
                shape = weights.get_slice(key).get_shape()
                size = 1
                for dim in shape:
                    size *= dim
                total += size
                if key.endswith(
                    ("embed_tokens.weight", "embed_in.weight", "lm_head.weight", "embed_out.weight", "wte.weight")
                ):
                    embedding += size
    return {"n_params": total, "n_params_non_embedding": total - embedding}


def model_identity(manifest: dict) -> str:
    """What identifies a model's answers: its SHA (hub commit, or weights hash) and the current hash of
    every file of its checkpoint folder an engine reads besides the weights.

    Hashed afresh from the folder (small files only), so editing a local checkpoint's tokenizer.json or
    config.json changes the identity, and with it every request key, even before its manifest is rebuilt.
    """
    folder = Path(manifest["path"])
    files = (
        sorted(
            p
            for p in folder.iterdir()
            if p.is_file() and p.name not in NOT_READ and not p.name.endswith(WEIGHT_SUFFIXES)
        )
        if folder.is_dir()
        else []
    )
    return stable_hash({"sha": manifest["sha"], "files": {p.name: file_sha256(p) for p in files}})


def display_path(path: Path) -> str:
    """A checkpoint's path, relative to the working folder when inside it, so results do not depend
    on where the repository was cloned."""
    path, here = path.resolve(), Path.cwd().resolve()
    return str(path.relative_to(here)) if path.is_relative_to(here) else str(path)


def write_manifest(name: str, entry: dict, checkpoint: Path, sha: str, out: Path, extra: dict | None = None) -> dict:
    """Describe a materialised checkpoint in `out` (JSON, written atomically)."""
    check_checkpoint(checkpoint, name)
    hashes = {f: file_sha256(checkpoint / f) for f in HASHED_FILES if (checkpoint / f).is_file()}
    for weights in sorted(checkpoint.glob("*.safetensors")):
        hashes[weights.name] = file_sha256(weights)
    manifest = {
        "model": name,
        "source": entry["source"],
        "family": entry.get("family", name),
        "path": display_path(checkpoint),
        "sha": sha,
        "file_sha256": hashes,
        **count_parameters(checkpoint),
        "training_tokens": entry.get("training_tokens"),
        "training_flops": None,
        "flops_convention": "C = 6 N D (Kaplan et al. 2020), N non-embedding parameters",
        "trust_remote_code": bool(entry.get("trust_remote_code", False)),
        # as the model card states them, beside the counts read from the weights above
        "card_parameters": {k: entry[k] for k in ("parameters", "non_embedding_parameters") if k in entry},
        **(extra or {}),
    }
    if manifest["training_tokens"]:
        manifest["training_flops"] = 6 * manifest["n_params_non_embedding"] * manifest["training_tokens"]
    write_json(manifest, out)
    return manifest


def materialise(
    name: str,
    entry: dict,
    out_manifest: Path,
    seed: int,
    inputs: dict[str, Path] | None = None,
    lock_file: Path | None = None,
) -> dict:
    """Make the checkpoint of one configured model available through its source and write its manifest.

    `inputs` are the files the source declared (`ModelSource.inputs`), made by other rules.
    """
    from emergence.sources import SourceContext, source_of

    context = SourceContext({k: Path(v) for k, v in (inputs or {}).items()}, lock_file)
    return source_of(name, entry).materialise(name, entry, Path(out_manifest), seed, context)


def build_in_place(folder: Path, build) -> None:
    """Build a checkpoint in a temporary folder and rename it into place (never a half-built folder)."""
    tmp = atomic_path(folder)
    tmp.unlink()
    try:
        build(tmp)
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


# --- tiny models built here ------------------------------------------------------------------------

BYTE_SPECIALS = ["<bos>", "<eos>", "<pad>"]


def build_byte_tokenizer(out: Path) -> None:
    """A byte-level BPE tokenizer with no merges: every byte is one token, any text round-trips."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {symbol: index for index, symbol in enumerate(sorted(alphabet))}
    for special in BYTE_SPECIALS:
        vocab[special] = len(vocab)
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>")
    fast.save_pretrained(out)


def tiny_llama(spec: dict, seed: int):
    """A random-initialised fp32 Llama of the given width and depth for the byte tokenizer, seeded."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    hidden = spec["hidden_size"]
    config = LlamaConfig(
        vocab_size=256 + len(BYTE_SPECIALS),
        hidden_size=hidden,
        intermediate_size=spec.get("intermediate_size", 4 * hidden),
        num_hidden_layers=spec["num_layers"],
        num_attention_heads=spec["num_heads"],
        num_key_value_heads=spec["num_heads"],
        max_position_embeddings=spec.get("max_position_embeddings", 512),
        bos_token_id=256,
        eos_token_id=257,
        pad_token_id=258,
        tie_word_embeddings=False,
        dtype="float32",
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).to(torch.float32)  # type: ignore[arg-type]  # transformers' stubs for .to()


def build_tiny_llama(out: Path, spec: dict, seed: int) -> None:
    """Save a random-initialised tiny Llama and its byte tokenizer as a checkpoint in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    build_byte_tokenizer(out)
    tiny_llama(spec, seed).save_pretrained(out, safe_serialization=True)
