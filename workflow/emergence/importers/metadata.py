"""N, D and C of a model named by a results file, from the registry `config/model_families.yaml`.

A result made elsewhere names its model (`EleutherAI/pythia-410m`) and perhaps a checkpoint
(`step33000`) but not its scale. The registry lists well-known families with the parameter counts and
training tokens their model cards and papers state (each family cites its source), so an import gets
N (total and non-embedding parameters), D (training tokens: step x tokens per step for an
intermediate checkpoint) and C = 6ND with N the non-embedding count, the convention
`models.write_manifest` uses for the workflow's own models (Kaplan et al. 2020).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from emergence.errors import InputError

REGISTRY = Path(__file__).resolve().parents[3] / "config" / "model_families.yaml"
SCALE_KEYS = "n_params, n_params_non_embedding and training_tokens"
FINAL_REVISIONS = ("", "main")  # a hub repository's default branch: the final checkpoint


@dataclass(frozen=True)
class ModelScale:
    """One checkpoint's scale. `step` is None for the final (or only) checkpoint."""

    model: str  # the registry's name
    family: str
    n_params: int
    n_params_non_embedding: int
    training_tokens: int
    step: int | None
    final: bool  # the end of the family's training run: the checkpoint a curve over sizes uses

    @property
    def training_flops(self) -> float:
        """C = 6 N D, N non-embedding (as `models.write_manifest`)."""
        return float(6 * self.n_params_non_embedding * self.training_tokens)  # exact product, one rounding


@dataclass(frozen=True)
class Family:
    name: str
    training_tokens: int
    tokens_per_step: int | None
    final_step: int | None
    models: dict[str, dict]


class ModelRegistry:
    """The families of one registry file, with its name aliases."""

    def __init__(self, path: Path = REGISTRY):
        self.path = Path(path)
        try:
            data = yaml.safe_load(self.path.read_text())
        except OSError as err:
            raise InputError(f"{self.path}: cannot read the model registry ({err})") from None
        except yaml.YAMLError as err:
            raise InputError(f"{self.path}: the model registry is not valid YAML ({yaml_problem(err)})") from None
        data = mapping(self.path, data, "the registry")
        aliases, families = (mapping(self.path, data.get(key), key) for key in ("aliases", "families"))
        self.aliases: dict[str, str] = {str(old): str(new) for old, new in aliases.items()}
        self.families = [family_entry(self.path, name, entry) for name, entry in families.items()]

    def canonical(self, name: str) -> str:
        """The registry's name for a model as a results file writes it: no hub organisation, lower
        case, an alias's start rewritten."""
        short = name.strip().rsplit("/", 1)[-1].lower()
        for old, new in self.aliases.items():
            if short.startswith(old):
                return new + short[len(old) :]
        return short

    def scale(self, name: str, revision: str | None = None) -> ModelScale:
        """N, D and C of `name` at `revision` (None, `main` or `step<S>`); InputError for a model the
        registry does not know, naming the model and the keys to add."""
        model = self.canonical(name)
        family = next((f for f in self.families if model in f.models), None)
        if family is None:
            raise InputError(
                f"model {name!r} is not in the model registry {self.path}: add it under its family"
                f" with {SCALE_KEYS} (and their source)"
            )
        entry, step = family.models[model], checkpoint_step(name, revision)
        tokens = entry.get("training_tokens", family.training_tokens)
        if step is not None:
            if family.tokens_per_step is None:
                raise InputError(
                    f"model {name!r} at {revision}: family {family.name} lists no tokens_per_step"
                    f" in {self.path}; add it to get D of a checkpoint"
                )
            tokens = step * family.tokens_per_step
        final = step is None or step == family.final_step
        return ModelScale(
            model,
            family.name,
            int(entry["n_params"]),
            int(entry["n_params_non_embedding"]),
            int(tokens),
            step,
            final,
        )


def yaml_problem(err: yaml.YAMLError) -> str:
    """A YAML parser's error as one line: where (line, column) and what, without its caret diagram."""
    mark = getattr(err, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    return where + str(getattr(err, "problem", None) or str(err).splitlines()[0])


def mapping(path: Path, value: object, where: str) -> dict:
    """A registry section that must be a mapping (None: empty); InputError naming it otherwise."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"{path}: {where} must be a mapping of names, not {type(value).__name__} {value!r:.60}")
    return value


def family_entry(path: Path, name: str, entry: object) -> Family:
    """One family of the registry file, checked: every model has both parameter counts."""
    entry = mapping(path, entry, f"family {name}")
    models = {
        str(model).lower(): mapping(path, counts, f"family {name}, model {model}")
        for model, counts in mapping(path, entry.get("models"), f"family {name}, models").items()
    }
    for model, counts in models.items():
        missing = [k for k in ("n_params", "n_params_non_embedding") if not isinstance(counts.get(k), int)]
        if missing:
            raise InputError(f"{path}: family {name}, model {model}: no integer {' or '.join(missing)}")
    if not isinstance(entry.get("training_tokens"), int) or not entry.get("source"):
        raise InputError(f"{path}: family {name} needs an integer training_tokens and its source")
    return Family(name, entry["training_tokens"], entry.get("tokens_per_step"), entry.get("final_step"), models)


def checkpoint_step(name: str, revision: str | None) -> int | None:
    """The training step a revision names (`step33000` -> 33000); None for the final checkpoint."""
    text = (revision or "").strip()
    if text in FINAL_REVISIONS:
        return None
    match = re.fullmatch(r"step(\d+)", text)
    if not match:
        raise InputError(f"model {name!r}: revision {text!r} names no training step (expected main or step<S>)")
    return int(match.group(1))


@cache
def registry(path: Path = REGISTRY) -> ModelRegistry:
    """The registry of a file, read once per process."""
    return ModelRegistry(path)


def scale_of(name: str, revision: str | None = None, path: Path = REGISTRY) -> ModelScale:
    """N, D and C of a model named as results files name it (see `ModelRegistry.scale`)."""
    return registry(Path(path)).scale(name, revision)
