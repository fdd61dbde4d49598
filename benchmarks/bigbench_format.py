"""Exact match of one model on the default sweep's BIG-bench arithmetic, as one version of the package prompts and scores it.

Used to say how BIG-bench's own prompt format (choices appended to the input, default prefixes kept)
changes the numbers: run it once on this checkout and once on an older one, side by side.

    git worktree add /tmp/before <older commit>
    python benchmarks/bigbench_format.py --checkpoint CKPT --archive bigbench-1.0.0.tar.gz               # this checkout
    python benchmarks/bigbench_format.py --checkpoint CKPT --archive ... --package-root /tmp/before/workflow

CKPT is a checkpoint folder (e.g. SmolLM2-135M-Instruct as the `model` rule of a sweep with
smollm2-135m converts it into results/models/smollm2-135m/checkpoint). Prints one line per task x method: items, exact match.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--archive", required=True, help="the bigbench-1.0.0.tar.gz source archive")
    parser.add_argument(
        "--package-root", default=str(REPO / "workflow"), help="the workflow/ folder whose emergence package to use"
    )
    parser.add_argument("--config", default=str(REPO / "config" / "config.yaml"))
    parser.add_argument("--methods", nargs="+", default=["zero_shot", "few_shot_4"])
    args = parser.parse_args()
    sys.path.insert(0, args.package_root)  # before the installed package
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

    import emergence
    from emergence.engines import Request, load_engine
    from emergence.methods import build_prompts
    from emergence.plan import expand_methods
    from emergence.scoring import score_generations
    from emergence.scoring.items import batch_tokenizer
    from emergence.tasks import build_task

    print(f"package: {Path(emergence.__file__).parent}", flush=True)
    config = yaml.safe_load(Path(args.config).read_text())
    methods = expand_methods(config["methods"])
    settings = {
        "dtype": "float32",
        "max_model_len": 1024,
        "memory_fraction": 0.3,
        "tensor_parallel_size": 1,
        "seed": config["seed"],
    }
    engine = load_engine("vllm", args.checkpoint, settings)
    tokenize = batch_tokenizer(engine.tokenizer)
    summary = {}
    for task in ("bigbench_arithmetic", "bigbench_arithmetic_long"):
        items = build_task(task, config["tasks"][task], config["seed"], {"archive": Path(args.archive)})
        for method in args.methods:
            prompts = build_prompts(task, items, method, methods[method], config["sampling"], config["seed"])
            requests = [
                Request(
                    prompt=r.prompt,
                    target=r.target,
                    max_tokens=int(r.max_tokens),
                    temperature=float(r.temperature),
                    top_p=float(r.top_p),
                    n=int(r.n),
                    seed=int(r.seed),
                    stop=tuple(r.stop),
                )
                for r in prompts.itertuples()
            ]
            results = engine.run(requests)
            generations = prompts.assign(
                texts=[r.texts for r in results],
                token_logprobs=[r.token_logprobs for r in results],
                target_token_ids=[r.target_token_ids for r in results],
                target_logprobs=[r.target_logprobs for r in results],
            )
            generations = generations.drop(columns=["choices", "choice_scores"])
            scores = score_generations(
                generations, items, {"model": "m", "family": "f", "n_params": 1}, tokenize, ["exact_match"]
            )
            value = float(scores["value"].mean())
            summary[f"{task}/{method}"] = {"items": len(prompts), "exact_match": round(value, 4)}
            print(f"{task} {method}: {len(prompts)} items, exact match {value:.3f}", flush=True)
    print(json.dumps(summary, sort_keys=True))


if __name__ == "__main__":
    main()
