"""Structure counts of the package (issue: architecture): what a newcomer must read to add one kind.

    .venv/bin/python benchmarks/structure.py

Prints, for each registry (model sources, task kinds, prompting methods, answer filters, metrics,
engines), the most files outside the kind's own module that name one of its kinds (as a quoted string
in the package, the rules or the Snakefile; docs, tests and config/schema.yaml not counted); the
registry mechanisms (classes or dicts that map names to kinds); modules over 400 lines; functions over
60 lines; and whether parsing the workflow's plan imports vLLM, torch, matplotlib or rapidfuzz.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))

from emergence.engines import ENGINES  # noqa: E402
from emergence.importers import IMPORTERS  # noqa: E402
from emergence.methods import PROMPT_METHODS  # noqa: E402
from emergence.scoring.answers import FILTERS  # noqa: E402
from emergence.scoring.metrics import METRICS  # noqa: E402
from emergence.sources import SOURCES  # noqa: E402
from emergence.tasks import TASK_KINDS  # noqa: E402

HEAVY = ("vllm", "torch", "matplotlib", "rapidfuzz")


def code_files() -> list[Path]:
    return [*sorted((ROOT / "workflow").rglob("*.py")), *sorted((ROOT / "rules").glob("*.smk")), ROOT / "Snakefile"]


def home(entry: object) -> str | None:
    """The file that defines a registered kind (its class, or the function a record wraps)."""
    target = entry if isinstance(entry, type) else type(entry)
    if hasattr(entry, "fn"):
        target = entry.fn  # type: ignore[attr-defined]
    module = sys.modules.get(getattr(target, "__module__", ""))
    return getattr(module, "__file__", None)


def naming(name: str, own: str | None) -> list[str]:
    pattern = re.compile(rf"[\"']{re.escape(name)}[\"']")
    return [str(p.relative_to(ROOT)) for p in code_files() if str(p) != own and pattern.search(p.read_text())]


def main() -> None:
    registries = {
        "model sources": SOURCES,
        "task kinds": TASK_KINDS,
        "prompting methods": PROMPT_METHODS,
        "answer filters": FILTERS,
        "metrics": METRICS,
        "engines": ENGINES,
        "results formats": IMPORTERS,
    }
    print("kind registry: most files naming one kind outside its own module (the kind: files)")
    for label, registry in registries.items():
        places = {name: naming(name, home(entry)) for name, entry in registry.items()}
        worst = max(places, key=lambda n: len(places[n]))
        print(
            f"  {label:18s} {len(registry):3d} kinds, most named elsewhere: {len(places[worst])} ({worst}: {places[worst]})"
        )
    package = sorted((ROOT / "workflow" / "emergence").rglob("*.py"))
    mechanisms = sum(len(re.findall(r"\bRegistry\(", p.read_text())) for p in package)
    print(f"registries: {mechanisms} Registry instances, one mechanism (emergence.registry.Registry)")
    long_modules = [(p.name, n) for p in package if (n := len(p.read_text().splitlines())) > 400]
    print(f"modules over 400 lines: {len(long_modules)} {long_modules}")
    long_functions = [
        (p.name, node.name, node.end_lineno - node.lineno + 1)
        for p in package
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > 60
    ]
    print(f"functions over 60 lines: {len(long_functions)} {long_functions}")
    code = (
        "import sys, yaml; sys.path.insert(0, 'workflow'); import emergence.plan as p;"
        " p.plan(yaml.safe_load(open('config/config.yaml')));"
        f" print(','.join(m for m in {HEAVY!r} if m in sys.modules) or 'none')"
    )
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    print(f"heavy libraries loaded by planning the default sweep: {loaded.stdout.strip()}")


if __name__ == "__main__":
    main()
