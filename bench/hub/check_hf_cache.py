#!/usr/bin/env python3
"""Does the real huggingface_hub find what `neoxprobe fetch` wrote, and is it the cache it writes itself?

Also times both downloads of the same files from the same local server (neoxprobe with its
default --jobs 4, huggingface_hub one hf_hub_download after another, as a script loops).

1. Starts the local Hub (Tests/HubTests/hub_server.py) on pythia-mini from ../shared.
2. `neoxprobe fetch EleutherAI/pythia-mini --revisions all` into cache A.
3. With HF_HUB_OFFLINE=1 and HF_HUB_CACHE=A: `hf_hub_download` of every fetched file of every
   revision and `snapshot_download` of every revision must return paths inside A whose bytes equal
   the originals (sha256); `scan_cache_dir(A)` must report no warnings.
4. The real huggingface_hub, online against the same local Hub, downloads the same files into
   cache B (`hf_hub_download`); A and B must hold the same tree: blob names and sizes, snapshot
   links and their targets, refs and their bytes.

Usage: bench/hub/check_hf_cache.py [--neoxprobe .build/release/neoxprobe] (run with ../venv/bin/python).
Prints one JSON object; exit status 0 when every check passes.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUITE = os.path.join(os.path.dirname(ROOT), "shared", "models", "pythia-mini")
REPO = "EleutherAI/pythia-mini"


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def tree(cache):
    """Everything under a cache repository: files with sizes, links with targets, ref contents."""
    folder = os.path.join(cache, "models--EleutherAI--pythia-mini")
    out = {}
    for base, dirs, files in os.walk(folder):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(base, d))]:
            path = os.path.join(base, name)
            rel = os.path.relpath(path, folder)
            if os.path.islink(path):
                out[rel] = "-> " + os.readlink(path)
            elif rel.startswith("refs"):
                out[rel] = "ref " + open(path).read()
            else:
                out[rel] = "%d bytes" % os.path.getsize(path)
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--neoxprobe", default=os.path.join(ROOT, ".build", "release", "neoxprobe"))
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="neoxprobe-hfcheck-")
    server = subprocess.Popen([sys.executable, os.path.join(ROOT, "Tests", "HubTests", "hub_server.py"), "--root", SUITE, "--repo", REPO],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    endpoint = server.stdout.readline().split()[-1]
    result = {"endpoint": endpoint, "checks": {}}
    try:
        cache_a = os.path.join(scratch, "neoxprobe-cache")
        env = dict(os.environ, HF_ENDPOINT=endpoint, HF_HUB_CACHE=cache_a, HF_HOME=os.path.join(scratch, "home"))
        env.pop("HF_TOKEN", None)
        started = time.time()
        fetch = subprocess.run([args.neoxprobe, "fetch", REPO, "--revisions", "all", "--json"], env=env, capture_output=True, text=True)
        if fetch.returncode != 0:
            raise SystemExit("neoxprobe fetch failed: " + fetch.stderr)
        result["fetch_seconds"] = round(time.time() - started, 2)
        fetched = json.loads(fetch.stdout)["revisions"]

        # 3. The real huggingface_hub, offline, on neoxprobe's cache.
        check = r'''
import json, sys, hashlib
from huggingface_hub import hf_hub_download, snapshot_download, scan_cache_dir, __version__
fetched = json.loads(sys.argv[1]); cache = sys.argv[2]
files = 0
for rev in fetched:
    snap = snapshot_download("EleutherAI/pythia-mini", revision=rev["revision"])
    assert snap.startswith(cache), snap
    for f in rev["files"]:
        path = hf_hub_download("EleutherAI/pythia-mini", f["path"], revision=rev["revision"])
        assert path.startswith(snap), (path, snap)
        print(json.dumps([rev["revision"], f["path"], path]))
        files += 1
info = scan_cache_dir(cache)
repo = [r for r in info.repos if r.repo_id == "EleutherAI/pythia-mini"][0]
print(json.dumps({"version": __version__, "files": files, "warnings": [str(w) for w in info.warnings],
                  "revisions": len(repo.revisions), "refs": sorted(r for rev in repo.revisions for r in rev.refs)}))
'''
        offline = dict(env, HF_HUB_OFFLINE="1")
        run = subprocess.run([sys.executable, "-c", check, json.dumps(fetched), cache_a], env=offline, capture_output=True, text=True)
        if run.returncode != 0:
            raise SystemExit("huggingface_hub offline check failed:\n" + run.stderr)
        lines = [json.loads(l) for l in run.stdout.splitlines()]
        summary = lines[-1]
        mismatched = [l for l in lines[:-1] if sha256(l[2]) != sha256(os.path.join(SUITE, l[0] if l[0] != "main" else "step2000", l[1]))]
        result["huggingface_hub"] = summary["version"]
        result["checks"]["offline_hf_hub_download_and_snapshot_download"] = {
            "files": summary["files"], "bytes_differing": len(mismatched), "scan_cache_dir_warnings": summary["warnings"],
            "revisions": summary["revisions"], "refs": summary["refs"]}

        # 4. The real huggingface_hub's own cache, online against the same server.
        cache_b = os.path.join(scratch, "huggingface-hub-cache")
        download = r'''
import json, sys
from huggingface_hub import hf_hub_download
for rev in json.loads(sys.argv[1]):
    for f in rev["files"]:
        hf_hub_download("EleutherAI/pythia-mini", f["path"], revision=rev["revision"])
'''
        online = dict(env, HF_HUB_CACHE=cache_b, HF_HUB_DISABLE_XET="1", HF_HUB_ENABLE_HF_TRANSFER="0")
        started = time.time()
        run = subprocess.run([sys.executable, "-c", download, json.dumps(fetched)], env=online, capture_output=True, text=True)
        result["huggingface_hub_download_seconds"] = round(time.time() - started, 2)
        if run.returncode != 0:
            raise SystemExit("huggingface_hub download from the local Hub failed:\n" + run.stderr)
        a, b = tree(cache_a), tree(cache_b)
        differences = sorted(set(a.items()) ^ set(b.items()))
        result["checks"]["same_tree_as_huggingface_hub_writes"] = {"entries": len(a), "differences": [list(d) for d in differences]}
        ok = (not mismatched and not summary["warnings"] and summary["files"] == sum(len(r["files"]) for r in fetched)
              and not differences)
        result["ok"] = ok
        print(json.dumps(result, indent=2))
        return 0 if ok else 1
    finally:
        server.terminate()
        subprocess.run(["rm", "-rf", scratch])


if __name__ == "__main__":
    sys.exit(main())
