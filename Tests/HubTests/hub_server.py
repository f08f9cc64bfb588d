#!/usr/bin/env python3
"""A local Hugging Face Hub for the tests: Python's standard library only (CI has no venv).

Serves one model repository built from a directory of stepN/ checkpoints (pythia-mini), each step a
branch, with the endpoints and headers huggingface_hub uses (as in its file_download.py / hf_api.py):

  GET  /api/models/{repo}/refs                      branches with targetCommit (list_repo_refs)
  GET  /api/models/{repo}/revision/{rev}            {"sha", "siblings"} (model_info(revision=))
  GET  /api/models/{repo}/tree/{rev}?recursive=true files with size, oid, lfs.oid = sha256;
                                                    paged (3 entries a page) with Link: <...>; rel="next"
  HEAD/GET /{repo}/resolve/{rev}/{file}             git files: 200 with ETag = git blob sha1;
                                                    LFS files (*.safetensors, *.bin): 302 to /cdn/<sha256> (absolute
                                                    URL) with X-Repo-Commit, X-Linked-Etag, X-Linked-Size
  GET  /cdn/{sha256}                                the bytes, with Range (206 / Content-Range)

Errors carry X-Error-Code as the Hub sends it (RepoNotFound 401, RevisionNotFound 404, EntryNotFound
404, GatedRepo 401). `main` points at the last step's commit. A renamed repository (--renamed OLD)
answers with a relative 307 to the new name.

Options: --alias stepA=stepB (stepA serves stepB's files, as broken Pythia branches serve final
weights), --both stepN (add stepN's weights as pytorch_model.bin too, copied from a .bin step).

Faults, set while running with GET /_control?fault=KIND&match=SUBSTRING[&count=N][&bytes=B][&seconds=S][&token=T]:
  drop       send B bytes of a matching body (default half) then close the connection
  wronghash  flip a byte of a matching body
  notfound   404 without X-Error-Code for a matching path
  gated      every request without "Authorization: Bearer T" gets 401 GatedRepo
  slow       sleep S seconds before answering a matching path
  throttle   send a matching body at B bytes a second (a slow network, for kill -9 mid-download)
  stall      send B bytes of a matching body (default half), then send nothing for S seconds and close
count: how many requests the fault applies to (default: all). /_control?reset=1 clears faults and the
log; /_control/log returns the requests seen ([method, path, range header]).
Prints "listening on http://127.0.0.1:PORT" once ready.
"""
import argparse
import hashlib
import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LFS_SUFFIXES = (".safetensors", ".bin")


def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Repository:
    def __init__(self, root, aliases, both):
        self.blobs = {}      # sha256 -> path on disk
        self.revisions = {}  # name -> {"commit", "files": {path: entry}}
        steps = sorted((d for d in os.listdir(root) if d.startswith("step") and d[4:].isdigit()), key=lambda d: int(d[4:]))
        cache = {}

        def describe(path):
            if path not in cache:
                with open(path, "rb") as f:
                    data = f.read()
                entry = {"size": len(data), "sha1": git_blob_sha1(data), "disk": path}
                if path.endswith(LFS_SUFFIXES):
                    entry["sha256"] = hashlib.sha256(data).hexdigest()
                    pointer = "version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n" % (entry["sha256"], len(data))
                    entry["sha1"] = git_blob_sha1(pointer.encode())
                    entry["pointer_size"] = len(pointer)
                    self.blobs[entry["sha256"]] = path
                cache[path] = entry
            return cache[path]

        sources = {}
        for step in steps:
            folder = os.path.join(root, aliases.get(step, step))
            sources[step] = {name: describe(os.path.join(folder, name)) for name in sorted(os.listdir(folder))}
        bin_source = next((s for s in steps if "pytorch_model.bin" in sources[s]), None)
        for step in both:
            if bin_source:
                sources[step]["pytorch_model.bin"] = describe(os.path.join(root, bin_source, "pytorch_model.bin"))
        for step in steps:
            files = sources[step]
            commit = hashlib.sha1(("commit %s\n" % step + "".join("%s %s\n" % (p, e["sha1"]) for p, e in files.items())).encode()).hexdigest()
            self.revisions[step] = {"commit": commit, "files": files}
        if steps:
            self.revisions["main"] = self.revisions[steps[-1]]

    def lookup(self, rev):
        if rev in self.revisions:
            return self.revisions[rev]
        for info in self.revisions.values():
            if info["commit"] == rev:
                return info
        return None


class Faults:
    def __init__(self):
        self.lock = threading.Lock()
        self.items = []
        self.log = []

    def set(self, query):
        with self.lock:
            if "reset" in query:
                self.items, self.log = [], []
                return
            self.items.append({
                "kind": query["fault"], "match": query.get("match", ""),
                "count": int(query.get("count", "-1")), "bytes": int(query["bytes"]) if "bytes" in query else None,
                "seconds": float(query.get("seconds", "0")), "token": query.get("token", ""),
            })

    def take(self, kind, path):
        with self.lock:
            for item in self.items:
                if item["kind"] == kind and item["match"] in path and item["count"] != 0:
                    if item["count"] > 0:
                        item["count"] -= 1
                    return item
        return None

    def gate(self):
        with self.lock:
            return next((i for i in self.items if i["kind"] == "gated"), None)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeHub/1.0"

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.handle_request(head=True)

    def do_GET(self):
        self.handle_request(head=False)

    # -- helpers
    def send(self, status, body=b"", headers=None, head=False, content_type="application/json"):
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def json(self, status, obj, headers=None, head=False):
        self.send(status, json.dumps(obj).encode(), headers, head)

    def error(self, status, code, message, head=False):
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self.json(status, {"error": message}, headers, head)

    def base(self):
        return "http://%s:%d" % self.server.server_address[:2]

    # -- routing
    def handle_request(self, head):
        state = self.server.state
        parsed = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(parsed.path)
        query = dict(urllib.parse.parse_qsl(parsed.query))
        if path == "/_control":
            state.faults.set(query)
            return self.json(200, {"ok": True})
        if path == "/_control/log":
            with state.faults.lock:
                return self.json(200, list(state.faults.log))
        with state.faults.lock:
            state.faults.log.append([self.command, path, self.headers.get("Range")])
        slow = state.faults.take("slow", path)
        if slow:
            time.sleep(slow["seconds"])
        gate = state.faults.gate()
        if gate and self.headers.get("Authorization") != "Bearer " + gate["token"]:
            return self.error(401, "GatedRepo", "Access to model %s is restricted. You must have access to it and be authenticated to access it. Please log in." % state.repo, head)
        if state.faults.take("notfound", path):
            return self.send(404, b"Not Found", head=head, content_type="text/plain")
        if path.startswith("/cdn/"):
            return self.cdn(path[len("/cdn/"):], path, head)
        if path.startswith("/api/models/"):
            return self.api(path[len("/api/models/"):], query, head)
        for name in (state.repo, state.renamed):
            if name and path.startswith("/" + name + "/resolve/"):
                if name != state.repo:
                    target = "/" + state.repo + path[len("/" + name):]
                    return self.send(307, b"", {"Location": urllib.parse.quote(target)}, head)
                return self.resolve(path[len("/" + name + "/resolve/"):], head)
        return self.error(401, "RepoNotFound", "Repository not found", head)

    def api(self, rest, query, head):
        state = self.server.state
        if not rest.startswith(state.repo + "/"):
            return self.error(401, "RepoNotFound", "Repository not found", head)
        rest = rest[len(state.repo) + 1:]
        kind, _, rev = rest.partition("/")
        if kind == "refs":
            branches = [{"name": n, "ref": "refs/heads/" + n, "targetCommit": i["commit"]} for n, i in state.hub.revisions.items()]
            return self.json(200, {"branches": branches, "tags": [], "converts": []}, head=head)
        info = state.hub.lookup(rev)
        if info is None:
            return self.error(404, "RevisionNotFound", "Invalid rev id: " + rev, head)
        if kind == "revision":
            return self.json(200, {"id": state.repo, "modelId": state.repo, "sha": info["commit"],
                                   "siblings": [{"rfilename": p} for p in info["files"]]}, head=head)
        if kind == "tree":
            entries = []
            for p, e in info["files"].items():
                entry = {"type": "file", "oid": e["sha1"], "size": e["size"], "path": p}
                if "sha256" in e:
                    entry["lfs"] = {"oid": e["sha256"], "size": e["size"], "pointerSize": e["pointer_size"]}
                entries.append(entry)
            start = int(query.get("cursor", "0"))
            page = entries[start:start + 3]
            headers = {}
            if start + 3 < len(entries):
                q = dict(query, cursor=str(start + 3))
                headers["Link"] = '<%s/api/models/%s/tree/%s?%s>; rel="next"' % (
                    self.base(), state.repo, urllib.parse.quote(rev, safe=""), urllib.parse.urlencode(q))
            return self.json(200, page, headers, head)
        return self.error(404, None, "no such API", head)

    def resolve(self, rest, head):
        state = self.server.state
        rev, _, file = rest.partition("/")
        info = state.hub.lookup(rev)
        if info is None:
            return self.error(404, "RevisionNotFound", "Invalid rev id: " + rev, head)
        entry = info["files"].get(file)
        if entry is None:
            return self.error(404, "EntryNotFound", "%s does not exist on %s" % (file, rev), head)
        common = {"X-Repo-Commit": info["commit"], "Accept-Ranges": "bytes"}
        if "sha256" in entry:
            headers = dict(common)
            headers.update({"ETag": '"%s"' % entry["sha1"], "X-Linked-Etag": '"%s"' % entry["sha256"],
                            "X-Linked-Size": str(entry["size"]), "Location": "%s/cdn/%s?file=%s" % (self.base(), entry["sha256"], urllib.parse.quote(file))})
            return self.send(302, b"", headers, head)
        with open(entry["disk"], "rb") as f:
            data = f.read()
        headers = dict(common)
        headers["ETag"] = '"%s"' % entry["sha1"]
        return self.send(200, data, headers, head, content_type="application/octet-stream")

    def cdn(self, sha, path, head):
        state = self.server.state
        disk = state.hub.blobs.get(sha)
        if disk is None:
            return self.send(404, b"NoSuchKey", head=head, content_type="text/plain")
        with open(disk, "rb") as f:
            data = f.read()
        if state.faults.take("wronghash", path + "?" + sha):
            data = bytearray(data)
            data[len(data) // 2] ^= 0xFF
            data = bytes(data)
        start = 0
        status = 200
        headers = {"ETag": '"%s"' % sha, "Accept-Ranges": "bytes"}
        header = self.headers.get("Range")
        if header and header.startswith("bytes="):
            first, _, last = header[len("bytes="):].partition("-")
            start = int(first)
            end = int(last) if last else len(data) - 1
            if start >= len(data):
                headers["Content-Range"] = "bytes */%d" % len(data)
                return self.send(416, b"", headers, head, content_type="text/plain")
            headers["Content-Range"] = "bytes %d-%d/%d" % (start, end, len(data))
            data = data[start:end + 1]
            status = 206
        drop = state.faults.take("drop", path) or state.faults.take("stall", path)
        if drop and not head:
            cut = drop["bytes"] if drop["bytes"] is not None else len(data) // 2
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[:cut])
            self.wfile.flush()
            if drop["kind"] == "stall":
                time.sleep(drop["seconds"] or 0)
            self.close_connection = True
            self.connection.shutdown(2)
            return
        # Large bodies go out in pieces, so a slow reader (or a cut connection) behaves as on a network.
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if head:
            return
        throttle = state.faults.take("throttle", path)
        piece = 1 << 20
        if throttle:
            piece = max(1, throttle["bytes"] // 10)
        for offset in range(0, len(data), piece):
            self.wfile.write(data[offset:offset + piece])
            if throttle:
                self.wfile.flush()
                time.sleep(0.1)


class State:
    pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True, help="directory of stepN/ checkpoints")
    parser.add_argument("--repo", default="EleutherAI/pythia-mini")
    parser.add_argument("--renamed", default="", help="an old name of the repository (answers with a relative redirect)")
    parser.add_argument("--alias", action="append", default=[], help="stepA=stepB: stepA serves stepB's files")
    parser.add_argument("--both", action="append", default=[], help="stepN also carries a pytorch_model.bin")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    state = State()
    state.repo = args.repo
    state.renamed = args.renamed
    state.hub = Repository(args.root, dict(a.split("=", 1) for a in args.alias), args.both)
    state.faults = Faults()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.state = state
    print("listening on http://127.0.0.1:%d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
