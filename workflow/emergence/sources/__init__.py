"""Model sources: where a configured model's checkpoint comes from (the `source` key of its entry).

Each source is one class in one module of this package, registered by name. It declares the files
another rule must provide before its manifest can be made (`inputs`), checks its entry before any job
starts (`check`) and makes the checkpoint available (`materialise`, which ends in
`models.write_manifest`). Nothing outside this package names a source. Modules here import only the
standard library and the package's light modules at the top: the sweep plan reads `inputs` and `check`
when Snakemake parses the workflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from emergence.errors import InputError
from emergence.registry import Registry, load_package


class ModelSource:
    """One way to obtain a checkpoint. Subclasses set `name` and override `materialise`."""

    name: ClassVar[str]

    def inputs(self, model: str, entry: dict) -> dict[str, str | list[str]]:
        """Files (made by other rules, or read from disk) the manifest is made from, by input name."""
        return {}

    def check(self, model: str, entry: dict, config: dict) -> None:
        """Refuse an entry that is well-formed but cannot be used, with one line naming the key."""

    def materialise(self, model: str, entry: dict, out_manifest: Path, seed: int, context: SourceContext) -> dict:
        """Make the checkpoint available and write its manifest (`models.write_manifest`); return it."""
        raise NotImplementedError


class SourceContext:
    """What a source may need besides its entry: the files of `inputs` and the sweep's revision lock file."""

    def __init__(self, inputs: dict[str, Path] | None = None, lock_file: Path | None = None):
        self.inputs, self.lock_file = inputs or {}, lock_file

    def input(self, model: str, key: str) -> Path:
        if key not in self.inputs:
            raise InputError(f"model {model}: the {key} input was not given")
        return Path(self.inputs[key])


SOURCES: Registry[ModelSource] = Registry("source")
model_source = SOURCES.register_class


def source_of(model: str, entry: dict) -> ModelSource:
    """The registered source of a model entry; an unknown one is an error naming the model."""
    return SOURCES.find(entry.get("source"), f"model {model}")


load_package(__name__, __path__)
