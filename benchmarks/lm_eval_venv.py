"""lm-evaluation-harness in a virtual environment of its own, layered on .venv: shared by the benchmark
against lm-eval (benchmarks/against_lm_eval.py) and the test that imports a real lm-eval run
(tests/test_lm_eval_04.py), so one install serves both.

In .venv, lm-eval would downgrade python-dateutil (4.0.0 -> 2.9.0.post0, for pytablewriter's typepy<2).
Its own environment sees .venv's packages behind its own (a .pth file), so lm-eval runs the very same
torch, transformers and vLLM as the workflow; `ensure_lm_eval` checks that .venv's versions are
unchanged afterwards. A lock file keeps two processes from building the environment at once.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / "benchmarks" / "out" / "against_lm_eval" / "venv-lm-eval"  # git-ignored (benchmarks/out/)


class SetupError(RuntimeError):
    """lm-eval could not be installed, or installing it changed .venv."""


def lm_eval_pin() -> tuple[str, str]:
    """lm-eval's pin: the `bench` extra of pyproject.toml where it is, else 0.4.13."""
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("optional-dependencies", {})
    for requirement in extras.get("bench", []):
        name, _, version = requirement.partition("==")
        if name.strip().lower().replace("_", "-") == "lm-eval" and version:
            return "lm-eval", version.strip()
    return "lm-eval", "0.4.13"


LM_EVAL = lm_eval_pin()


def installed_versions(python: Path) -> dict[str, str]:
    """Every distribution `python` sees, name: version (read in a fresh process)."""
    code = "import importlib.metadata as m, json; print(json.dumps({d.metadata['Name'].lower(): d.version for d in m.distributions()}))"
    return json.loads(subprocess.check_output([str(python), "-c", code], text=True))


def installed(venv: Path = VENV) -> Path | None:
    """The lm_eval command of `venv` when it holds the pinned version, else None."""
    python, command = venv / "bin" / "python", venv / "bin" / "lm_eval"
    probe = f"import importlib.metadata as m; assert m.version('lm_eval') == '{LM_EVAL[1]}'"
    found = python.exists() and command.exists()
    return (
        command if found and subprocess.run([str(python), "-c", probe], capture_output=True).returncode == 0 else None
    )


def index_problem(timeout: float = 300) -> str:
    """Why pip cannot fetch the pinned lm-eval ("" when it can): no network or no index, say."""
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", f"{LM_EVAL[0]}=={LM_EVAL[1]}", "-d", folder]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return f"`{' '.join(command)}` took over {timeout:.0f} s"
    if done.returncode == 0:
        return ""
    lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
    return f"`pip download {LM_EVAL[0]}=={LM_EVAL[1]}` failed: {lines[-1] if lines else done.returncode}"


def ensure_lm_eval(venv: Path = VENV, say: Callable[[str], None] = print) -> Path:
    """The lm_eval command of a virtual environment layered on .venv, created and filled if missing.
    SetupError when pip fails or .venv's distributions changed meanwhile."""
    if command := installed(venv):
        return command
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.with_name(venv.name + ".flock"), "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)  # another process may be installing it now
        if command := installed(venv):
            return command
        return install(venv, say)


def install(venv: Path, say: Callable[[str], None]) -> Path:
    python = venv / "bin" / "python"
    before = installed_versions(Path(sys.executable))
    say(f"set-up: {LM_EVAL[0]}=={LM_EVAL[1]} would downgrade python-dateutil in .venv, so it goes to {venv}")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    site = subprocess.check_output(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
    ).strip()
    ours = sysconfig.get_paths()["purelib"]
    # behind the environment's own site-packages: .venv's packages (vLLM, torch, transformers) are seen, not copied
    Path(site, "zz_emergence_venv.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    say(f"set-up: {site}/zz_emergence_venv.pth adds {ours} behind the environment's own packages")
    command = [str(python), "-m", "pip", "install", f"{LM_EVAL[0]}=={LM_EVAL[1]}"]
    say("set-up: " + " ".join(command))
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SetupError(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    after = installed_versions(Path(sys.executable))
    changed = {k: (v, after.get(k)) for k, v in before.items() if after.get(k) != v}
    if changed:
        raise SetupError(f"set-up changed .venv (name: (before, after)): {changed}")
    added = sorted(set(after) - set(before))  # pip never installs into .venv here: something else did meanwhile
    say(
        f"set-up: done; .venv's {len(before)} distributions kept their versions"
        + (f" ({', '.join(added)} added meanwhile by another process)" if added else "")
    )
    return venv / "bin" / "lm_eval"
