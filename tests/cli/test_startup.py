"""An instant command line (issue 13.3): help and usage errors import no torch.

``soundtransfer --help``, ``soundtransfer COMMAND --help`` and usage errors are answered
before any heavy module loads: the packages' public names load on first use
(:mod:`soundtransfer.lazy`) and the commands import their libraries inside their handlers.
Checked by what a fresh interpreter has imported, not by timing
(``benchmarks/cli_startup.py`` shows the time).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import soundtransfer
from soundtransfer.cli.main import COMMANDS

SRC = Path(soundtransfer.__file__).resolve().parents[1]

# Not imported by help or a usage error (numpy alone costs ~0.1 s; torch 1-5 s).
HEAVY = (
    "torch",
    "torchvision",
    "kornia",
    "numpy",
    "scipy",
    "sklearn",
    "matplotlib",
    "soundfile",
    "soxr",
    "librosa",
    "PIL",
    "safetensors",
    "onnx",
    "onnxruntime",
    "tqdm",
)
# Not imported by the packages and the settings modules (numpy allowed: presets use it).
TORCH = ("torch", "torchvision", "kornia")

CASES = [
    ["--help"],
    ["--version"],
    *[[name.replace("_", "-"), "--help"] for name in COMMANDS],
    ["weights", "list", "--help"],
    ["weights", "fetch", "--help"],
    [],  # no command: a usage error
    ["no-such-command"],
    ["finetune"],  # missing arguments: a usage error
    ["finetune", "esc10", "--root", ".", "--preset", "no-such-preset"],
    ["pretrain", "--images", "."],
]

# Runs each case in one fresh interpreter and reports the exit code and the heavy modules that
# each case added, so a failure names the case that imported them.
PROBE = """
import contextlib, io, json, sys
from soundtransfer.cli.main import main
heavy, cases, report = json.loads(sys.argv[1]), json.loads(sys.argv[2]), []
for argv in cases:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    loaded = sorted(m for m in heavy if m in sys.modules)
    report.append({"argv": argv, "code": code, "loaded": loaded})
print(json.dumps(report))
"""

IMPORTS = """
import importlib, json, sys
for name in json.loads(sys.argv[2]):
    importlib.import_module(name)
print(json.dumps(sorted(m for m in json.loads(sys.argv[1]) if m in sys.modules)))
"""

LIGHT_MODULES = [
    "soundtransfer.analysis",
    "soundtransfer.audio",
    "soundtransfer.datasets",
    "soundtransfer.experiments.grid",
    "soundtransfer.features",
    "soundtransfer.inference",
    "soundtransfer.models",
    "soundtransfer.pretrain",
    "soundtransfer.pretrain.config",
    "soundtransfer.runs",
    "soundtransfer.train",
    "soundtransfer.train.config",
    "soundtransfer.weights",
    "soundtransfer.audio.presets",
    "soundtransfer.config",
]


def _python(code: str, *args: str) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_help_and_usage_errors_import_no_heavy_module() -> None:
    report = json.loads(_python(PROBE, json.dumps(HEAVY), json.dumps(CASES)))
    assert [r["argv"] for r in report] == CASES
    for r in report:
        assert r["loaded"] == [], f"soundtransfer {' '.join(r['argv'])} imported {r['loaded']}"
    codes = {" ".join(r["argv"]): r["code"] for r in report}
    assert codes["--help"] == 0 and codes["finetune --help"] == 0, codes
    # Usage errors exit 2 (argparse), as library errors do.
    for argv in ("", "no-such-command", "finetune", "pretrain --images ."):
        assert codes[argv] == 2, (argv, codes[argv])
    assert codes["finetune esc10 --root . --preset no-such-preset"] == 2


def test_the_probe_sees_a_heavy_import() -> None:
    # The check can fail: a command that does import torch is reported.
    report = json.loads(_python("import torch\n" + PROBE, json.dumps(HEAVY), '[["--help"]]'))
    assert "torch" in report[0]["loaded"]


def test_packages_and_settings_modules_import_no_torch() -> None:
    loaded = json.loads(_python(IMPORTS, json.dumps(TORCH), json.dumps(LIGHT_MODULES)))
    assert loaded == [], f"importing {LIGHT_MODULES} pulled in {loaded}"
