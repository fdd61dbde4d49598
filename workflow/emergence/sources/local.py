"""`local`: a checkpoint folder already on disk, identified by the hash of its weights."""

from __future__ import annotations

from pathlib import Path

from emergence.config import ConfigError
from emergence.io import file_sha256, stable_hash
from emergence.models import ModelError, check_checkpoint, write_manifest
from emergence.sources import ModelSource, SourceContext, model_source


@model_source
class Local(ModelSource):
    name = "local"

    def inputs(self, model: str, entry: dict) -> dict[str, str | list[str]]:
        """The folder's files: an edited tokenizer or config makes a new manifest, and new answers."""
        folder = Path(entry["path"]).expanduser()
        return {"checkpoint": sorted(str(p) for p in folder.iterdir() if p.is_file())} if folder.is_dir() else {}

    def check(self, model: str, entry: dict, config: dict) -> None:
        try:
            check_checkpoint(Path(entry["path"]).expanduser(), model)
        except ModelError as err:
            raise ConfigError(f"models.{model}.path: {err}") from None

    def materialise(self, model: str, entry: dict, out_manifest: Path, seed: int, context: SourceContext) -> dict:
        path = Path(entry["path"]).expanduser()
        check_checkpoint(path, model)
        weights_hash = stable_hash({p.name: file_sha256(p) for p in sorted(path.glob("*.safetensors"))})
        return write_manifest(model, entry, path, weights_hash, out_manifest)
