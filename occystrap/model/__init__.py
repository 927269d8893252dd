"""Image model: media types and small value helpers, no I/O (OCI image-spec, Docker v2.2)."""
import hashlib
import re

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


def sha256_digest(data):
    """`sha256:<hex>` of bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_hex(digest):
    """The hex part of `sha256:<hex>` (a bare hex passes through)."""
    return digest.split(":", 1)[1] if ":" in digest else digest


def format_size(size):
    """Human size as 0.4.17 printed it (B.1): 1024-based B/KB/MB/GB, None -> N/A."""
    if size is None:
        return "N/A"
    if size < 1024:
        return "%d B" % size
    if size < 1024 ** 2:
        return "%.1f KB" % (size / 1024)
    if size < 1024 ** 3:
        return "%.1f MB" % (size / 1024 ** 2)
    return "%.1f GB" % (size / 1024 ** 3)


def repo_tags(image, tag):
    """RepoTags of a docker-save manifest: NAME:TAG, or none when the image has no name or
    was referenced by digest (`docker load` refuses `NAME:sha256:...`)."""
    if image == "unknown" or not tag or ":" in tag:
        return []
    return ["%s:%s" % (image, tag)]


# The most threads or connections one option may ask for (-j, -J, ?max_workers, proxy
# -c): each one is allocated up front (urllib3 fills its pool at creation), so a typo
# such as -j 4000000000 would exhaust memory instead of failing.
MAX_PARALLEL = 1024
MAX_RETRIES = 100               # backoff is capped, so more would only wait longer
# --rate-limit in requests per second: below one request per 100 s a copy would look
# hung (1e-9 meant one request every 30 years); above a million there is no limit left.
RATE_LIMIT_RANGE = (0.01, 1000000)


# Registered algorithms of the OCI image spec (descriptor.md, "Digests").
DIGEST_RES = {"sha256": re.compile(r"^[a-f0-9]{64}$"),
              "sha512": re.compile(r"^[a-f0-9]{128}$")}


def is_digest(value):
    """Whether value is a digest of a registered algorithm (sha256:<64 hex>, ...)."""
    if not isinstance(value, str):
        return False
    algorithm, _, encoded = value.partition(":")
    check = DIGEST_RES.get(algorithm)
    return check is not None and check.match(encoded) is not None


def check_descriptor(desc):
    """An OCI descriptor from outside, with the fields occystrap uses shaped right: a
    digest of a registered algorithm (it becomes part of request paths), a size that is
    a non-negative integer and a media type that is a string, when given.

    :raises ValueError: naming the bad field.
    """
    if not isinstance(desc, dict) or not is_digest(desc.get("digest")):
        raise ValueError("bad descriptor digest %r"
                         % (desc.get("digest") if isinstance(desc, dict) else desc,))
    size = desc.get("size")
    if size is not None and (type(size) is not int or size < 0):
        raise ValueError("bad size %r of %s" % (size, desc["digest"]))
    if not isinstance(desc.get("mediaType", ""), str):
        raise ValueError("bad mediaType %r of %s" % (desc["mediaType"], desc["digest"]))
    return desc


def save_manifest_entries(manifest):
    """The entries of a docker-save manifest.json (tar:// and dir://), shape-checked:
    Config a path, Layers a list of paths, RepoTags absent, null or NAME:TAG strings.
    Everything after this may index and split them without guarding.

    :raises ValueError: naming what is wrong (callers add which file).
    """
    if not isinstance(manifest, list) or not manifest \
            or not all(isinstance(entry, dict) for entry in manifest):
        raise ValueError("lists no image")
    for number, entry in enumerate(manifest, 1):
        layers = entry.get("Layers")
        if not isinstance(entry.get("Config"), str) or not isinstance(layers, list):
            raise ValueError("entry %d lacks Config or Layers" % number)
        if not all(isinstance(path, str) for path in layers):
            raise ValueError("entry %d: Layers must be a list of paths" % number)
        tags = entry.get("RepoTags")
        if tags is not None and not (isinstance(tags, list)
                                     and all(isinstance(tag, str) for tag in tags)):
            raise ValueError("entry %d: RepoTags must be a list of NAME:TAG strings" % number)
    return manifest


def config_diff_ids(config):
    """rootfs.diff_ids of an image config ([] when it has none), shape-checked.

    :raises ValueError: the config or its rootfs is not an object, or diff_ids is not a
        list of strings.
    """
    if not isinstance(config, dict):
        raise ValueError("not a JSON object")
    rootfs = config.get("rootfs")
    if rootfs is None:
        return []
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if diff_ids is None and isinstance(rootfs, dict):
        return []
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise ValueError("rootfs.diff_ids must be a list of digests")
    return list(diff_ids)


def split_repotag(repotag):
    """(name, tag) of a RepoTags item: split at the last ':' unless that ':' is a
    registry port (`host:5000/name`), then the tag is latest."""
    name, _, tag = repotag.rpartition(":")
    if not name or "/" in tag:
        return repotag, "latest"
    return name, tag


DOCKER_SOCKET = "/var/run/docker.sock"     # the Engine API's default unix socket
