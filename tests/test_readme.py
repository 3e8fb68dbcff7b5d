"""The README's examples run as written."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_dask_localcluster_example_runs_as_written(tmp_path):
    pytest.importorskip("dask.distributed")
    block = next(b for b in _python_blocks() if "LocalCluster(" in b)
    script = tmp_path / "dask_example.py"
    script.write_text(block)
    out = subprocess.run([sys.executable, str(script)], capture_output=True,
                         text=True, timeout=900, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    # weights ~0.5/0.5 and the first feature's means ~0 and ~6
    nums = [float(v) for v in re.findall(r"-?\d+\.\d+(?:e-?\d+)?", lines[0])]
    weights, means = nums[:2], sorted(nums[2:4])
    assert all(abs(w - 0.5) < 0.01 for w in weights), lines[0]
    assert abs(means[0]) < 0.05 and abs(means[1] - 6) < 0.05, lines[0]
    assert len(lines[1].strip("[]").split()) == 10


def test_mclust_summary_example_prints_what_the_readme_shows():
    text = README.read_text()
    block = next(b for b in _python_blocks() if "print(res.summary())" in b)
    # the block, its closing fence, then the output block
    shown = text[text.index(block) + len(block):].split("```\n")[2]
    out = subprocess.run([sys.executable, "-c", block], capture_output=True,
                         text=True, timeout=900,
                         cwd=README.parent)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == shown.strip()
