#!/usr/bin/env python3
"""A two-platform image (OCI index or Docker manifest list) in a docker-registry.

    python benchmarks/multiarch_corpus.py --size-mb 500 [--registry HOST:PORT]

Two corpus images (benchmarks/corpus.py, seeds 1 and 2, so their big layers
differ) of ~N MiB each, both on top of one small base layer they share
(~1 MiB, identical bytes, so it is one blob in the registry).  The tarballs are
cached in benchmarks/data/multiarch-N-{amd64,arm64}.tar.  Each is pushed with
this tree's occystrap to REPO:amd64 and REPO:arm64 (gzip, Docker schema 2
manifests), and an index naming them linux/amd64 and linux/arm64 is PUT at
REPO:all: a Docker manifest list, or with --index-format oci an OCI image index
over OCI twins of the two manifests (same blobs, PUT at REPO:amd64-oci/arm64-oci).

Without --registry a fresh docker-registry (tests/peers.py) is started, filled,
described and stopped: a smoke test of the generator.
"""
import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
DATA = os.path.join(HERE, "data")
for _path in (HERE, REPO_ROOT):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import corpus  # noqa: E402
from tests import imagebuilder as ib  # noqa: E402

SRC_REPO = "bench/src"
PLATFORMS = [("amd64", 1), ("arm64", 2)]          # (architecture, corpus seed)
LAYERS = 4                                        # corpus layers per image (+ the base)

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
ACCEPT = ", ".join([OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST])


def shared_base_layer():
    """Bytes of the small base layer both platforms share (deterministic)."""
    rng = random.Random("multiarch-base")
    entries = [("dir", d, {"mtime": ib.EPOCH}) for d in ("etc", "usr", "usr/share",
                                                          "usr/share/base")]
    entries.append(("file", "etc/base-release", b"ID=bench-base\n", {"mtime": ib.EPOCH}))
    for i in range(64):
        entries.append(("file", "usr/share/base/data-%02d.bin" % i, rng.randbytes(16384),
                        {"mtime": ib.EPOCH - i}))
    return ib.layer(entries)


def tarball_path(size_mb, arch, data_dir=DATA):
    return os.path.join(data_dir, "multiarch-%d-%s.tar" % (size_mb, arch))


def make_tarball(out, size_mb, seed, arch):
    """Write a docker-save tarball: the shared base layer + LAYERS corpus layers."""
    gen = corpus.Corpus(seed, size_mb, LAYERS)
    outdir = os.path.dirname(os.path.abspath(out))
    os.makedirs(outdir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=outdir, prefix=".multiarch-") as tmp:
        paths = [os.path.join(tmp, "base.tar")]
        with open(paths[0], "wb") as f:
            f.write(shared_base_layer())
        for index in range(LAYERS):
            path = os.path.join(tmp, "layer-%d.tar" % index)
            with open(path, "wb") as f:
                ib.write_layer(f, gen.layer_entries(index))
            paths.append(path)
        partial = out + ".tmp-%d" % os.getpid()
        try:
            ib.build_image(partial, paths, repotag="example.com/occystrap/bench-%s:1.0" % arch,
                           layout="legacy", config={"architecture": arch})
            os.replace(partial, out)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
    return out


def ensure_tarballs(size_mb, data_dir=DATA):
    """{arch: tarball path}, generating the missing ones."""
    out = {}
    for arch, seed in PLATFORMS:
        path = tarball_path(size_mb, arch, data_dir)
        if not os.path.exists(path):
            print("generating %s (%d MiB) ..." % (path, size_mb), flush=True)
            make_tarball(path, size_mb, seed, arch)
        out[arch] = path
    return out


def _opener():
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get_manifest(registry, repo, ref):
    """(media type, exact bytes) of REPO:REF in the plain-HTTP registry HOST:PORT."""
    request = urllib.request.Request("http://%s/v2/%s/manifests/%s" % (registry, repo, ref),
                                     headers={"Accept": ACCEPT})
    with _opener().open(request, timeout=60) as response:
        body = response.read()
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    return media_type or json.loads(body).get("mediaType"), body


def put_manifest(registry, repo, ref, body, media_type):
    request = urllib.request.Request("http://%s/v2/%s/manifests/%s" % (registry, repo, ref),
                                     data=body, method="PUT",
                                     headers={"Content-Type": media_type})
    with _opener().open(request, timeout=60) as response:
        return response.headers.get("Docker-Content-Digest")


def push(tarball, ref, env=None, tree=REPO_ROOT):
    """python -m occystrap --insecure process tar://TARBALL registry://REF, run in `tree`
    (python -m puts the working directory first on sys.path)."""
    proc = subprocess.run([sys.executable, "-m", "occystrap", "--insecure", "process",
                           "tar://" + tarball, "registry://" + ref], cwd=tree, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError("pushing %s to %s failed:\n%s" % (tarball, ref, proc.stderr[-2000:]))


DOCKER_TO_OCI = {
    DOCKER_MANIFEST: OCI_MANIFEST,
    "application/vnd.docker.container.image.v1+json": "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.image.rootfs.diff.tar.gzip":
        "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar": "application/vnd.oci.image.layer.v1.tar",
}


def as_oci(body):
    """A Docker schema 2 manifest's OCI twin (same blobs, OCI media types)."""
    manifest = json.loads(body)
    manifest["mediaType"] = DOCKER_TO_OCI[manifest["mediaType"]]
    for item in [manifest["config"]] + manifest["layers"]:
        item["mediaType"] = DOCKER_TO_OCI.get(item["mediaType"], item["mediaType"])
    return json.dumps(manifest, indent=3).encode()


def index_document(children):
    """The index for [(arch, media type, manifest bytes)] (all children of one kind)."""
    kinds = {media_type for _arch, media_type, _body in children}
    if len(kinds) != 1:
        raise RuntimeError("children of different kinds: %s" % sorted(kinds))
    child_type = kinds.pop()
    index_type = OCI_INDEX if child_type == OCI_MANIFEST else DOCKER_LIST
    manifests = [{"mediaType": media_type,
                  "digest": "sha256:" + hashlib.sha256(body).hexdigest(),
                  "size": len(body),
                  "platform": {"architecture": arch, "os": "linux"}}
                 for arch, media_type, body in children]
    document = {"schemaVersion": 2, "mediaType": index_type, "manifests": manifests}
    return index_type, json.dumps(document, indent=3).encode()


def build_index(registry, size_mb, repo=SRC_REPO, data_dir=DATA, env=None, tree=REPO_ROOT,
                index_format="docker"):
    """Fill `registry` (HOST:PORT) with the two-platform image; return a description:
    {"ref": HOST/REPO:all, "index_type", "index_digest", "children": {arch: digest},
    "layers": {arch: [digests]}, "shared": [digests in both], "bytes": stored bytes}.

    index_format "docker": the children as occystrap pushed them (Docker schema 2, so a
    Docker manifest list); "oci": each child re-PUT with OCI media types (same blobs) at
    REPO:ARCH-oci and an OCI image index over them."""
    tarballs = ensure_tarballs(size_mb, data_dir)
    children, layers, sizes = [], {}, {}
    for arch, _seed in PLATFORMS:
        push(tarballs[arch], "%s/%s:%s" % (registry, repo, arch), env=env, tree=tree)
        media_type, body = get_manifest(registry, repo, arch)
        if index_format == "oci" and media_type == DOCKER_MANIFEST:
            media_type, body = OCI_MANIFEST, as_oci(body)
            put_manifest(registry, repo, arch + "-oci", body, media_type)
        children.append((arch, media_type, body))
        manifest = json.loads(body)
        layers[arch] = [layer["digest"] for layer in manifest["layers"]]
        for item in manifest["layers"] + [manifest["config"]]:
            sizes[item["digest"]] = item["size"]
    index_type, index_body = index_document(children)
    digest = put_manifest(registry, repo, "all", index_body, index_type)
    shared = sorted(set(layers["amd64"]) & set(layers["arm64"]))
    return {"ref": "%s/%s:all" % (registry, repo), "repo": repo, "index_type": index_type,
            "index_digest": digest,
            "children": {arch: "sha256:" + hashlib.sha256(body).hexdigest()
                         for arch, _t, body in children},
            "layers": layers, "shared": shared, "bytes": sum(sizes.values())}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=500, help="per platform")
    parser.add_argument("--registry", help="HOST:PORT of a plain-HTTP registry to fill "
                                           "(default: a throwaway docker-registry)")
    parser.add_argument("--repo", default=SRC_REPO)
    parser.add_argument("--data-dir", default=DATA)
    parser.add_argument("--index-format", choices=("docker", "oci"), default="docker")
    args = parser.parse_args(argv)
    registry = None
    if args.registry is None:
        sys.path.insert(0, os.path.join(REPO_ROOT, "tests"))
        import peers
        registry = peers.Registry(storage="filesystem").start()
    try:
        info = build_index(args.registry or registry.url, args.size_mb, args.repo,
                           args.data_dir, index_format=args.index_format)
    finally:
        if registry is not None:
            registry.stop()
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
