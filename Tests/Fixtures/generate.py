#!/usr/bin/env python3
"""Regenerates every committed reference fixture from the real references (HF transformers,
HF tokenizers, PyTorch, lm-evaluation-harness formulas). Run with the reference venv:

    make fixtures            # or: ../venv/bin/python Tests/Fixtures/generate.py [area ...]

Each area has its own script beside this one; this file only runs them in order.
CI never runs this: it needs PyTorch. Tests read the fixtures these scripts commit.
"""
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
AREAS = ["tokenizer", "corpus", "checkpoints", "locator", "engine", "grad", "probes", "eval", "sweep", "generation", "hooks", "analyses"]

def main() -> int:
    wanted = sys.argv[1:] or AREAS
    for area in wanted:
        script = HERE / f"generate_{area}.py"
        if not script.exists():
            print(f"skip {area}: {script.name} not present")
            continue
        print(f"== {area}", flush=True)
        subprocess.run([sys.executable, str(script)], check=True, cwd=HERE.parent.parent)
    return 0

if __name__ == "__main__":
    sys.exit(main())
