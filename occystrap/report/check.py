"""`check`: validate an image (B.5), a CI gate (exit 1 on any error).

Metadata checks use the manifest and config only (`--fast` stops there).  Full mode
is a copy into nothing with one observer, LayerChecks: the copier's one layer pipeline
streams every layer exactly once (decompress, sha256 for the diff_id, the native tar
parser for the member checks), in its threads, and a report is made per image in
manifest order.  A layer that is not a tar or cannot be decompressed is a
`tar-format` error, never a crash; a layer two platforms share is scanned once.
"""
import collections
import dataclasses
import hashlib
import json

from .._native import rewrite
from .._native._common import OPAQUE_MARKER, TarError, WHITEOUT_PREFIX
from ..filters.base import Filter
from ..model import format_size, platforms
from ..model.tree import ImageIndex, platform_name
from ..uri import FilterSpec
from .info import compression_of, load_config, truncate_digest

ERROR = "error"
WARNING = "warning"
INFO = "info"

LARGE_LAYER_THRESHOLD = 1024 ** 3          # 1 GiB compressed
DUPLICATES_SHOWN = 10
REGULAR_TYPES = frozenset([b"0", b"\0", b"7", b"S"])    # tarfile's isreg()
OCI_MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json",
                      "application/vnd.oci.image.index.v1+json")
DOCKER_MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


@dataclasses.dataclass
class CheckReport:
    """Results of one check run: (severity, check_id, message) in report order."""
    image: str
    tag: str
    fast: bool = False
    results: list = dataclasses.field(default_factory=list)
    registry: str = None        # the host of a registry source ("image" leaves it out)
    config: dict = None         # the image config checked, when there was one

    def add(self, severity, check_id, message):
        self.results.append((severity, check_id, message))

    def error(self, check_id, message):
        self.add(ERROR, check_id, message)

    def warning(self, check_id, message):
        self.add(WARNING, check_id, message)

    def info(self, check_id, message):
        self.add(INFO, check_id, message)

    @property
    def errors(self):
        return sum(1 for severity, _c, _m in self.results if severity == ERROR)

    @property
    def warnings(self):
        return sum(1 for severity, _c, _m in self.results if severity == WARNING)

    @property
    def has_errors(self):
        return self.errors > 0

    @property
    def mode(self):
        return "fast" if self.fast else "full"


def run_checks(source, fast=False, parallel=4):
    """Check one ImageSource; returns a CheckReport (metadata only when fast)."""
    return run_set_checks(source, fast, parallel)[0][1]


def _multi(source):
    return platforms.keeps_index(source.platforms) and isinstance(source.root(), ImageIndex)


def run_set_checks(source, fast=False, parallel=4):
    """[(platform name or None, CheckReport)]: every image --platform selects from
    source's index (all, or a list), else the one image."""
    multi = _multi(source)
    if not fast:
        from ..api import NullSink, copy
        checks = LayerChecks(multi)
        copy(source, NullSink(), [checks], parallel=parallel, verify=False, damaged=[])
        return checks.reports
    if not multi:
        return [(None, metadata_report(source, fast))]
    root = source.root()
    reports = []
    for position in platforms.select_many(root.json, source.platforms):
        desc = root.manifests[position]
        image = source.image_of(source.child(desc))
        reports.append((platform_name(desc.platform), metadata_report(image, fast)))
    return reports


def metadata_report(source, fast):
    """A CheckReport with the manifest and config checks (and, unless fast, the
    config blob's digest and size)."""
    report = CheckReport(source.image, source.tag, fast, registry=source.registry)
    manifest = source.manifest()
    report.config = load_config(source)
    check_metadata(manifest, report.config, report)
    if not fast:
        check_config_blob(source, manifest, report)
    return report


def render_set_text(reports):
    """One image: render_text; several: each under a `Platform:` line."""
    if len(reports) == 1 and reports[0][0] is None:
        return render_text(reports[0][1])
    return "\n\n".join("Platform: %s\n%s" % (name, render_text(report))
                       for name, report in reports)


def set_to_json(reports):
    """One image: to_json; several: the index's reports under `platforms`, with the
    totals."""
    if len(reports) == 1 and reports[0][0] is None:
        return to_json(reports[0][1])
    first = reports[0][1]
    return json.dumps({"image": first.image, "tag": first.tag, "mode": first.mode,
                       "errors": sum(r.errors for _n, r in reports),
                       "warnings": sum(r.warnings for _n, r in reports),
                       "platforms": [dict(to_dict(r), platform=name) for name, r in reports]},
                      indent=2)


# -- metadata -------------------------------------------------------------------------

def _dict(value):
    return value if isinstance(value, dict) else {}


def _list(value):
    return value if isinstance(value, list) else []


def check_metadata(manifest, config, report):
    """The manifest/config checks of `check --fast`."""
    if manifest is None and config is None:
        report.warning("metadata", "No manifest or config available; metadata checks skipped")
        return
    rootfs = _dict(config.get("rootfs")) if config is not None else {}
    diff_ids = _list(rootfs.get("diff_ids"))
    layers = [_dict(layer) for layer in _list(manifest.get("layers"))] if manifest else []

    if manifest:
        schema = manifest.get("schemaVersion")
        if schema != 2:
            report.error("schema-version", "Manifest schemaVersion is %s, expected 2" % schema)
        else:
            report.info("schema-version", "Manifest schemaVersion is 2")

    if config is not None:
        rootfs_type = rootfs.get("type")
        if rootfs_type != "layers":
            report.error("rootfs-type",
                         'Config rootfs.type is %r, expected "layers"' % rootfs_type)
        else:
            report.info("rootfs-type", 'Config rootfs.type is "layers"')

    if manifest and config is not None:
        if len(layers) != len(diff_ids):
            report.error("layer-count", "Manifest has %d layers but config has %d diff_ids"
                         % (len(layers), len(diff_ids)))
        else:
            report.info("layer-count", "Layer count matches: %d layers, %d diff_ids"
                        % (len(layers), len(diff_ids)))

    if manifest:
        descriptor = _dict(manifest.get("config"))
        if descriptor.get("digest"):
            size = descriptor.get("size")
            report.info("config-descriptor", "Config descriptor present (digest: %s, size: %s)"
                        % (descriptor["digest"], size if size is not None else "N/A"))
        else:
            report.error("config-descriptor", "Manifest has no config descriptor")

    if config is not None:
        history = [_dict(entry) for entry in _list(config.get("history"))]
        built = sum(1 for entry in history if not entry.get("empty_layer"))
        count = len(layers) if manifest else len(diff_ids)
        if not history:
            report.info("history-count", "No history entries present")
        elif built != count:
            report.error("history-count", "History has %d non-empty entries but image has "
                         "%d layers" % (built, count))
        else:
            report.info("history-count", "History entries match: %d non-empty entries for "
                        "%d layers" % (built, count))

    if manifest:
        zstd = sum(1 for layer in layers if compression_of(layer.get("mediaType")) == "zstd")
        if zstd:
            report.warning("zstd-compat", "%d layer(s) use zstd compression; Docker Engine "
                           "< 20.10 and containerd < 1.5 cannot pull this image" % zstd)
        media_type = manifest.get("mediaType", "")
        if media_type in OCI_MANIFEST_TYPES:
            report.info("oci-media-type", "Image uses OCI media types; older Docker versions "
                        "may not handle this correctly")
        if media_type == DOCKER_MANIFEST_TYPE:
            report.info("docker-media-type", "Image uses Docker v2 media types; some OCI-only "
                        "tooling may not handle this")
        for index, layer in enumerate(layers):
            size = layer.get("size")
            if isinstance(size, int) and size > LARGE_LAYER_THRESHOLD:
                report.warning("large-layer", "Layer %d is very large: %s compressed"
                               % (index, format_size(size)))

    if config is not None and _dict(config.get("config")).get("ArgsEscaped"):
        report.warning("args-escaped",
                       "config.ArgsEscaped is set (Docker-specific, deprecated in OCI spec)")


def check_config_blob(source, manifest, report):
    """config-digest and config-size: the config bytes against the manifest descriptor."""
    if not manifest:
        return
    data = source.config_bytes()
    if data is None:
        return
    descriptor = _dict(manifest.get("config"))
    expected = descriptor.get("digest")
    actual = "sha256:" + hashlib.sha256(data).hexdigest()
    if expected and actual != expected:
        report.error("config-digest", "Config digest mismatch: expected %s, got %s"
                     % (expected, actual))
    elif expected:
        report.info("config-digest", "Config digest verified: %s" % actual)
    size = descriptor.get("size")
    if size is not None:
        if len(data) != size:
            report.error("config-size", "Config size mismatch: expected %s, got %d"
                         % (size, len(data)))
        else:
            report.info("config-size", "Config size verified: %d bytes" % size)


# -- layers ---------------------------------------------------------------------------

@dataclasses.dataclass
class LayerCheck:
    """What scanning one layer found (results in member order, regular file names)."""
    index: int
    diff_id: str = None             # None when the stream could not be decompressed
    results: list = dataclasses.field(default_factory=list)
    files: list = dataclasses.field(default_factory=list)


def _name(raw):
    return raw.decode("utf-8", "surrogateescape")


def _check_member(index, member, result):
    mode = member.mode
    if not (member.mtime < 0 or WHITEOUT_PREFIX in member.name or (
            mode is not None and mode & 0o6000 and mode & 0o002)):
        return              # the common member: nothing below can fire, and it is cheap
    name = _name(member.name)
    base = member.name.rsplit(b"/", 1)[-1]
    if base.startswith(WHITEOUT_PREFIX) and base != OPAQUE_MARKER:
        if base == WHITEOUT_PREFIX:
            result.append((ERROR, "whiteout", "Layer %d: empty whiteout target at %s"
                           % (index, name)))
        if member.type in REGULAR_TYPES and member.size > 0:
            result.append((WARNING, "whiteout-size", "Layer %d: whiteout %s has non-zero "
                           "size (%d bytes)" % (index, name, member.size)))
    if member.mtime < 0:
        result.append((ERROR, "tar-timestamp", "Layer %d: negative timestamp on %s "
                       "(mtime=%d)" % (index, name, member.mtime)))
    if mode is not None and (mode & 0o6000) and (mode & 0o002):
        result.append((WARNING, "tar-permissions", "Layer %d: %s has setuid/setgid with "
                       "world-writable (mode=%o)" % (index, name, mode)))


def _duplicates(indexes, scans):
    """[(file name, [layer indexes])] of regular files in more than one place, in order
    of first appearance.  Counted first (C speed, no list per file): most names are
    unique, and the full name -> layers map of a big image costs more than the hashing."""
    counts = collections.Counter()
    for scan in scans:
        counts.update(scan.files)
    layers = {name: [] for name, count in counts.items() if count > 1}
    if layers:
        for position, scan in enumerate(scans):
            for name in scan.files:
                if name in layers:
                    layers[name].append(indexes[position])
    return [(_name(name), found) for name, found in layers.items()]


class _LayerScan:
    """LayerChecks' stage for one layer: parses the tar and keeps what it finds.  A
    tar error is a finding, not the end: the bytes go on flowing, so the copier still
    computes the layer's diff_id."""

    def __init__(self, index):
        self.found = LayerCheck(index)
        self._parser = rewrite.TarRewriter(rewrite=False, collect=True)
        self._ok = True

    def _drain(self):
        members, self._parser.members = self._parser.members, []
        for member in members:
            _check_member(self.found.index, member, self.found.results)
        self.found.files.extend(m.name for m in members if m.type in REGULAR_TYPES)

    def _run(self, step, *args):
        if not self._ok:
            return
        try:
            step(*args)
        except TarError as exc:
            self._ok = False
            self.found.results.append((ERROR, "tar-format", "Layer %d is not a valid tar: %s"
                                       % (self.found.index, exc)))
        self._drain()

    def feed(self, data):
        self._run(self._parser.feed, data)
        return data

    def close(self):
        self._run(self._parser.close)
        return b""


class LayerChecks(Filter):
    """The full check as an observer of a copy: each image's report is made when the
    copier finishes the image (finish), from its manifest, config and layer scans."""
    name = "check"
    reads_any_blob = True       # a blob of no known compression is judged by the tar parser

    def __init__(self, multi=False):
        super().__init__(FilterSpec("check", {}, "check"))
        self.multi = multi              # name each report by its platform
        self.reports = []               # (platform name or None, CheckReport)
        self._by_digest = {}            # blob digest -> _LayerScan: shared layers once

    def stage(self, ref):
        scan = _LayerScan(ref.index)
        self.stages[ref.index] = scan
        if ref.digest:
            self._by_digest[ref.digest] = scan
        return scan

    def finish(self, source, results, out):
        report = metadata_report(source, False)
        scans = []
        for result in results:
            scan = self.stages.get(result.index)
            if scan is None and result.source is not None:
                scan = self._by_digest.get(result.source.digest)
            scans.append(scan.found if scan is not None else LayerCheck(result.index))
        _layer_findings(results, scans, report)
        name = platform_name(report.config) if self.multi else None
        self.reports.append((name, report))


def _layer_findings(results, scans, report):
    """Full-mode layer checks, reported in manifest order."""
    diff_ids = _list(_dict(_dict(report.config).get("rootfs")).get("diff_ids"))
    for position, (result, scan) in enumerate(zip(results, scans)):
        index = result.index
        if result.error is None and result.diff_id is not None and position < len(diff_ids):
            expected = diff_ids[position]
            if result.diff_id != expected:
                report.error("diff-id", "Layer %d diff_id mismatch: expected %s, got %s"
                             % (index, truncate_digest(expected),
                                truncate_digest(result.diff_id)))
            else:
                report.info("diff-id", "Layer %d diff_id verified" % index)
        for severity, check_id, message in scan.results:
            report.add(severity, check_id, message)
        if result.error is not None:
            report.error("tar-format", "Layer %d could not be decompressed: %s"
                         % (index, result.error))
    duplicates = _duplicates([r.index for r in results], scans)
    for name, layers in duplicates[:DUPLICATES_SHOWN]:
        report.info("duplicate-file", "File %r appears in layers %s" % (name, layers))
    if len(duplicates) > DUPLICATES_SHOWN:
        report.info("duplicate-file", "... and %d more duplicate files"
                    % (len(duplicates) - DUPLICATES_SHOWN))


# -- output ---------------------------------------------------------------------------

def render_text(report):
    """Errors / Warnings / Info sections and the `Check complete` line (B.5)."""
    out = []
    for severity, title in ((ERROR, "Errors:"), (WARNING, "Warnings:"), (INFO, "Info:")):
        lines = ["  [%s] %s" % (check_id, message)
                 for sev, check_id, message in report.results if sev == severity]
        if lines:
            out.append(title)
            out.extend(lines)
            out.append("")
    mode = "fast (metadata only)" if report.fast else "full"
    out.append("Check complete (%s): %d error(s), %d warning(s)"
               % (mode, report.errors, report.warnings))
    return "\n".join(out)


def to_dict(report):
    extra = {"registry": report.registry} if report.registry else {}
    return {
        "image": report.image,
        "tag": report.tag,
        "mode": report.mode,
        "errors": report.errors,
        "warnings": report.warnings,
        "results": [{"severity": severity, "check": check_id, "message": message}
                    for severity, check_id, message in report.results],
        **extra,
    }


def to_json(report):
    """The `-O json` document (indent 2, 0.4.17 key order)."""
    return json.dumps(to_dict(report), indent=2)


__all__ = ["CheckReport", "run_checks", "run_set_checks", "render_set_text", "set_to_json",
           "check_metadata", "LayerChecks",
           "render_text", "to_json", "to_dict", "ERROR", "WARNING", "INFO"]
