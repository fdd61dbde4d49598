"""`trained_tiny`: a tiny Llama trained here on the arithmetic curriculum by the `train_tiny` rule
(see `emergence.training`); its training tokens come from the run's record."""

from __future__ import annotations

import json
from pathlib import Path

from emergence.config import ConfigError
from emergence.io import file_sha256
from emergence.models import write_manifest
from emergence.sources import ModelSource, SourceContext, model_source


@model_source
class TrainedTiny(ModelSource):
    name = "trained_tiny"

    def inputs(self, model: str, entry: dict) -> dict[str, str | list[str]]:
        return {"trained": f"results/training/{model}"}

    def check(self, model: str, entry: dict, config: dict) -> None:
        if "training" not in config:
            raise ConfigError("training: trained_tiny models need a training section")

    def materialise(self, model: str, entry: dict, out_manifest: Path, seed: int, context: SourceContext) -> dict:
        trained = context.input(model, "trained")
        record = json.loads((trained / "training.json").read_text())
        entry = {**entry, "training_tokens": record["training_tokens"]}
        sha = file_sha256(trained / "model.safetensors")
        return write_manifest(model, entry, trained, sha, out_manifest, {"training": record})
