"""A tiny model family trained here: the stand-in for Pythia that a laptop can build in minutes.

Every size reads the same number of tokens of the same seeded arithmetic curriculum (so compute
grows with N, as across a real family), with a learning rate suited to its size. The curriculum
holds plain lines (`58+67=125`) and worked lines (`S:58+67=[8+7=15;5+6+1=12]125`), whose `S:` cue
lets the scratchpad prompting method ask for the worked format. Held-out operand pairs
(`tasks.arithmetic.is_heldout`) never appear, so evaluation items are unseen. Held-out loss is recorded at
several token counts, like Pythia's intermediate checkpoints, for loss-against-data curves.
"""

from __future__ import annotations

import json
import logging
import math
import random
from pathlib import Path

from emergence.errors import InputError
from emergence.methods.scratchpad import SCRATCHPAD_CUE
from emergence.tasks.arithmetic import OPERATORS, is_heldout, operands, scratchpad

log = logging.getLogger(__name__)


def curriculum_line(
    rng: random.Random, operations: list[str], max_digits: int, scratch_fraction: float, heldout: bool
) -> str:
    """One random line of the curriculum: a plain or a worked problem, from held-out pairs or not."""
    while True:
        operation = rng.choice(operations)
        a, b = operands(rng, rng.randint(1, max_digits))
        if is_heldout(operation, a, b) == heldout:
            break
    symbol, apply = OPERATORS[operation]
    if rng.random() < scratch_fraction:
        return f"{SCRATCHPAD_CUE}{a}{symbol}{b}={scratchpad(operation, a, b)}\n"
    return f"{a}{symbol}{b}={apply(a, b)}\n"


def longest_line(operations: list[str], max_digits: int) -> int:
    """Byte tokens in the longest worked line the curriculum can hold (largest operands, longest trace)."""
    largest = 10**max_digits - 1
    return max(
        len(f"{SCRATCHPAD_CUE}{largest}+{largest}={scratchpad(op, largest, largest)}\n".encode()) for op in operations
    )


def curriculum(rng: random.Random, spec: dict, n_tokens: int, heldout: bool) -> list[str]:
    """Curriculum lines until they hold `n_tokens` byte tokens."""
    lines, total = [], 0
    while total < n_tokens:
        lines.append(curriculum_line(rng, spec["operations"], spec["max_digits"], spec["scratchpad_fraction"], heldout))
        total += len(lines[-1].encode())
    return lines


def packed(tokenizer, lines: list[str], seq_len: int, pad: int):
    """Whole lines packed into rows of `seq_len` tokens, padded at the end: every row starts at the
    start of a line, as a prompt does at inference time."""
    import torch

    rows: list[list[int]] = []
    row: list[int] = []
    for line, ids in zip(lines, (encoding.ids for encoding in tokenizer.encode_batch(lines))):
        if len(ids) > seq_len:
            raise InputError(
                f"training.seq_len {seq_len} is shorter than the {len(ids)}-token curriculum line {line!r}"
            )
        if len(row) + len(ids) > seq_len:
            rows.append(row)
            row = []
        row += ids
    rows.append(row)
    tensor = torch.full((len(rows), seq_len), pad, dtype=torch.long)
    for index, ids in enumerate(rows):
        tensor[index, : len(ids)] = torch.tensor(ids)
    return tensor


def train_tiny_family_member(out: Path, entry: dict, training: dict, seed: int) -> dict:
    """Train one size on `training["tokens"]` curriculum tokens (or the entry's own `tokens`: a model ladder
    trains each size at several budgets) and save it (with its tokenizer) in `out`.

    AdamW with linear warm-up and cosine decay to a tenth of the peak rate; loss on every real token.
    Returns the training record also saved as `training.json`: tokens seen (D), steps, and held-out
    loss at `training["eval_points"]` evenly spaced token counts (no timings, so the record, like the
    weights, is the same on every run).
    """
    import torch
    from tokenizers import Tokenizer

    from emergence.models import build_byte_tokenizer, tiny_llama

    torch.set_num_threads(training["threads"])
    out.mkdir(parents=True, exist_ok=True)
    build_byte_tokenizer(out)
    tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
    pad = tokenizer.token_to_id("<pad>")
    assert pad is not None  # build_byte_tokenizer adds <pad>
    seq_len = training["seq_len"]
    training = {**training, "tokens": entry.get("tokens", training["tokens"])}
    train_ids = packed(
        tokenizer, curriculum(random.Random(f"{seed}/train"), training, training["tokens"], False), seq_len, pad
    )
    eval_ids = packed(
        tokenizer, curriculum(random.Random(f"{seed}/heldout"), training, training["eval_tokens"], True), seq_len, pad
    )
    model = tiny_llama(entry, seed)
    seen, steps, curve = optimise(model, train_ids, eval_ids, pad, entry["learning_rate"], training, seed)
    record = {
        "training_tokens": seen,
        "steps": steps,
        "learning_rate": entry["learning_rate"],
        "curve": curve,
        "training": training,
        "seed": seed,
    }
    model.save_pretrained(out, safe_serialization=True)
    (out / "training.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


def cosine_schedule(warmup: int, steps: int):
    """Linear warm-up to the peak rate, then cosine decay to a tenth of it: the rate's multiplier per step."""
    return lambda step: (
        (step + 1) / warmup
        if step < warmup
        else 0.1 + 0.45 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))
    )


def optimise(model, train_ids, eval_ids, pad: int, learning_rate: float, training: dict, seed: int):
    """One epoch of AdamW over the packed sequences in a seeded order, clipped at norm 1; held-out loss at
    `eval_points` evenly spaced steps. Returns the tokens seen, the steps and the held-out curve."""
    import torch

    batch = training["batch_size"]
    order = torch.randperm(len(train_ids), generator=torch.Generator().manual_seed(seed))
    steps = math.ceil(len(train_ids) / batch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, betas=(0.9, 0.95), weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, cosine_schedule(max(1, int(training["warmup_fraction"] * steps)), steps)
    )
    eval_steps = {round(steps * (i + 1) / training["eval_points"]) for i in range(training["eval_points"])}
    curve, seen = [], 0
    for step in range(1, steps + 1):
        ids = train_ids[order[(step - 1) * batch : step * batch]]
        model.train()
        loss = model(input_ids=ids, labels=labels_of(ids, pad)).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        seen += int((ids != pad).sum())
        if step in eval_steps:
            curve.append({"tokens": seen, "step": step, "heldout_loss": heldout_loss(model, eval_ids, pad)})
            log.info(f"train: step {step}/{steps}, {seen:,} tokens, held-out loss {curve[-1]['heldout_loss']:.4f}")
    return seen, steps, curve


def labels_of(ids, pad: int):
    """Next-token labels for a packed batch: every real token, none of the padding."""
    return ids.masked_fill(ids == pad, -100)


def heldout_loss(model, eval_ids, pad: int) -> float:
    """Mean per-token cross-entropy (nats) on the held-out blocks."""
    import torch

    model.eval()
    total = count = 0.0
    with torch.no_grad():
        for start in range(0, len(eval_ids), 64):
            ids = eval_ids[start : start + 64]
            labels = labels_of(ids, pad)
            n = int((labels[:, 1:] != -100).sum())
            total += float(model(input_ids=ids, labels=labels).loss) * n
            count += n
    return total / count
