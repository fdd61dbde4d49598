"""`hub`: a Hugging Face repo at a revision, through `huggingface_hub.snapshot_download`.

Honours `HF_HUB_OFFLINE` and the HF cache. A branch or tag is resolved to a commit at first download and
written to the sweep's revision lock file, which later runs (and other users) reuse.
"""

from __future__ import annotations

import fcntl
import re
from pathlib import Path

import yaml

from emergence.io import write_text
from emergence.models import ModelError, write_manifest
from emergence.sources import ModelSource, SourceContext, model_source

COMMIT = re.compile(r"[0-9a-f]{40}")
LOCK_HEADER = (
    "# Hub revisions resolved at first download (repo@revision: commit). Later runs download exactly\n"
    "# these commits; commit this file with the sweep. Delete a line to re-resolve that revision.\n"
)


@model_source
class Hub(ModelSource):
    name = "hub"

    def materialise(self, model: str, entry: dict, out_manifest: Path, seed: int, context: SourceContext) -> dict:
        repo, revision = entry["repo"], entry["revision"]
        locked = locked_revision(context.lock_file, repo, revision)
        path, sha = download_from_hub(model, repo, locked or revision)
        if context.lock_file and not locked and not COMMIT.fullmatch(revision):
            lock_revision(context.lock_file, repo, revision, sha)
        extra = {"repo": repo, "revision": revision, "locked": bool(locked)}
        return write_manifest(model, entry, path, sha, out_manifest, extra)


def download_from_hub(name: str, repo: str, revision: str) -> tuple[Path, str]:
    """Snapshot a hub repo at `revision` (honouring HF_HUB_OFFLINE and the cache); return path and commit SHA."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        path = Path(snapshot_download(repo_id=repo, revision=revision))
    except LocalEntryNotFoundError:
        raise ModelError(
            f"model {name}: {repo}@{revision} is not in the Hugging Face cache and the hub cannot be reached"
            " (HF_HUB_OFFLINE is set or there is no network)"
        ) from None
    except HfHubHTTPError as err:
        raise ModelError(f"model {name}: {repo}@{revision} could not be downloaded ({err})") from None
    # snapshot folders are named by the resolved commit SHA
    return path, path.name


def read_lock(lock_file: Path) -> dict[str, str]:
    if not lock_file.is_file():
        return {}
    try:
        pins = yaml.safe_load(lock_file.read_text()) or {}
    except yaml.YAMLError as err:
        raise ModelError(f"revision lock {lock_file}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(pins, dict) or not all(isinstance(v, str) and COMMIT.fullmatch(v) for v in pins.values()):
        raise ModelError(f"revision lock {lock_file}: every entry must be repo@revision: <40-hex commit>")
    return pins


def locked_revision(lock_file: Path | None, repo: str, revision: str) -> str | None:
    """The commit the lock file pins `repo@revision` to, if any."""
    return read_lock(Path(lock_file)).get(f"{repo}@{revision}") if lock_file else None


def lock_revision(lock_file: Path, repo: str, revision: str, sha: str) -> None:
    """Add `repo@revision: sha` to the lock file; model jobs running side by side take turns."""
    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file.with_name(lock_file.name + ".flock"), "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        pins = {**read_lock(lock_file), f"{repo}@{revision}": sha}
        write_text(LOCK_HEADER + yaml.safe_dump(dict(sorted(pins.items())), width=200), lock_file)
