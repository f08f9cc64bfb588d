#!/usr/bin/env python3
"""Where huggingface_hub puts its cache for each combination of the environment variables it reads
(HF_HUB_CACHE, HUGGINGFACE_HUB_CACHE, HF_HOME, XDG_CACHE_HOME, HOME), as the real package resolves
them: each case runs `huggingface_hub.constants` in a fresh interpreter with exactly that environment.
Writes Tests/Fixtures/locator/hub_cache.json for ModelLocatorTests.

Run with the reference environment:  ../venv/bin/python Tests/Fixtures/generate_locator.py
"""
import json
import pathlib
import subprocess
import sys

OUT = pathlib.Path(__file__).resolve().parent / "locator" / "hub_cache.json"
CASES = [
    {"HOME": "/home/x"},
    {"HOME": "/home/x", "XDG_CACHE_HOME": "/xdg"},
    {"HOME": "/home/x", "XDG_CACHE_HOME": "/xdg", "HF_HOME": "/hf"},
    {"HOME": "/home/x", "HF_HOME": "/hf", "HUGGINGFACE_HUB_CACHE": "/legacy"},
    {"HOME": "/home/x", "HF_HOME": "/hf", "HUGGINGFACE_HUB_CACHE": "/legacy", "HF_HUB_CACHE": "/hub"},
    {"HOME": "/home/x", "HF_HUB_CACHE": "~/hub"},
    {"HOME": "/home/x", "HF_HOME": "~/hf"},
]

def main() -> int:
    import huggingface_hub
    results = []
    for env in CASES:
        code = "import huggingface_hub.constants as c; print(c.HF_HUB_CACHE)"
        path = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True).stdout.strip()
        results.append({"environment": env, "hub_cache": path})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"huggingface_hub": huggingface_hub.__version__, "cases": results}, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT} ({len(results)} cases)")
    return 0

if __name__ == "__main__":
    sys.exit(main())
