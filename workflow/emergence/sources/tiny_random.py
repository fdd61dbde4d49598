"""`tiny_random`: a small random-initialised Llama with a byte-level tokenizer, built here from a seed."""

from __future__ import annotations

from pathlib import Path

from emergence.io import stable_hash
from emergence.models import build_in_place, build_tiny_llama, write_manifest
from emergence.sources import ModelSource, SourceContext, model_source


@model_source
class TinyRandom(ModelSource):
    name = "tiny_random"

    def materialise(self, model: str, entry: dict, out_manifest: Path, seed: int, context: SourceContext) -> dict:
        checkpoint = Path(out_manifest).parent / "checkpoint"
        build_in_place(checkpoint, lambda tmp: build_tiny_llama(tmp, entry, seed))
        sha = stable_hash({"tiny_random": {k: v for k, v in entry.items() if k != "source"}, "seed": seed})
        return write_manifest(model, entry, checkpoint, sha, out_manifest, {"seed": seed})
