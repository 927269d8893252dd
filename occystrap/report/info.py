"""`info`: an image's metadata as 0.4.17 showed it (B.4), without reading any layer.

image_info() builds the dict that `-O json` prints (keys in 0.4.17's order, present
only when their source, manifest or config, is available); render_text() gives the
human format, including the left-aligned PrettyTable-style layer table (rendered here:
prettytable is not a dependency).
"""
import textwrap
import unicodedata

from .._native import IMPLEMENTATION
from ..compression import from_media_type
from ..errors import InputError
from ..jsonparse import parse_json
from ..model import format_size
from ..model.tree import ImageIndex, platform_name

DIGEST_WIDTH = 25           # digests in tables: first 25 characters + "..."
CREATED_BY_WIDTH = 50       # max width of the Created By column (wraps)


def load_config(source):
    """The source's image config as a dict, or None when the source has none."""
    try:
        data = source.config_bytes()
    except NotImplementedError:
        return None
    if data is None:
        return None
    try:
        config = parse_json(data)
    except ValueError as exc:
        raise InputError("image config is not valid JSON: %s" % exc) from None
    if not isinstance(config, dict):
        raise InputError("image config is not a JSON object")
    return config


def _dict(value):
    return value if isinstance(value, dict) else {}


def _list(value):
    return value if isinstance(value, list) else []


def compression_of(media_type):
    """gzip / zstd / none / unknown, from a layer media type (B.4)."""
    return from_media_type(media_type) or "unknown"


def truncate_digest(digest):
    """A digest cut to 25 characters + '...' for display (B.4, B.5)."""
    digest = digest or ""
    return digest[:DIGEST_WIDTH] + "..." if len(digest) > DIGEST_WIDTH else digest


def image_info(source):
    """The info dict of an image source (B.4 key order), plus `implementation` last."""
    manifest = source.manifest()
    config = load_config(source)
    info = {"image": source.image, "tag": source.tag}

    if manifest:
        info["schema_version"] = manifest.get("schemaVersion")
        info["media_type"] = manifest.get("mediaType")
        descriptor = _dict(manifest.get("config"))
        info["config_digest"] = descriptor.get("digest")
        info["config_size"] = descriptor.get("size")
        layers = [_dict(layer) for layer in _list(manifest.get("layers"))]
        info["layer_count"] = len(layers)
        info["total_compressed_size"] = sum(layer.get("size") or 0 for layer in layers)
        info["layers"] = []
        for index, layer in enumerate(layers):
            media_type = layer.get("mediaType", "")
            info["layers"].append({
                "index": index,
                "digest": layer.get("digest"),
                "size": layer.get("size"),
                "media_type": media_type,
                "compression": compression_of(media_type),
            })

    if config is not None:
        info["architecture"] = config.get("architecture", "")
        info["os"] = config.get("os", "")
        info["variant"] = config.get("variant", "")
        info["created"] = config.get("created", "")
        diff_ids = _list(_dict(config.get("rootfs")).get("diff_ids"))
        info["diff_ids"] = diff_ids
        if "layers" in info:
            for layer, diff_id in zip(info["layers"], diff_ids):
                layer["diff_id"] = diff_id
        else:
            info["layer_count"] = len(diff_ids)
            info["layers"] = [{"index": i, "diff_id": d} for i, d in enumerate(diff_ids)]

        history = [_dict(entry) for entry in _list(config.get("history"))]
        info["history_count"] = len(history)
        info["empty_layer_count"] = sum(1 for entry in history if entry.get("empty_layer"))
        built = [entry for entry in history if not entry.get("empty_layer")]
        for layer, entry in zip(info["layers"], built):
            layer["created_by"] = entry.get("created_by", "")

        container = _dict(config.get("config"))
        info["labels"] = container.get("Labels") or {}
        info["env"] = container.get("Env") or []
        info["entrypoint"] = container.get("Entrypoint")
        info["cmd"] = container.get("Cmd")
        info["working_dir"] = container.get("WorkingDir", "")
        info["exposed_ports"] = list(_dict(container.get("ExposedPorts")))
        info["volumes"] = list(_dict(container.get("Volumes")))

    if source.registry:     # new key: "image" is the repository path, as in 0.4.17
        info["registry"] = source.registry
    root = source.root()
    if isinstance(root, ImageIndex):        # new keys: what the index offers
        info["index_media_type"] = root.media_type
        info["index_digest"] = root.digest
        info["platforms"] = [platform_entry(desc) for desc in root.manifests]
    info["implementation"] = IMPLEMENTATION
    return info


def platform_entry(desc):
    """An index entry for info: its platform fields, then what it points to."""
    platform = desc.platform or {}
    entry = {key: platform[key] for key in ("os", "architecture", "variant", "os.version")
             if platform.get(key)}
    entry.update(digest=desc.digest, media_type=desc.media_type, size=desc.size)
    return entry


# -- the PrettyTable look-alike ---------------------------------------------------------

def _char_width(char):
    if unicodedata.combining(char):
        return 0
    if unicodedata.east_asian_width(char) in ("W", "F"):
        return 2
    return 1


def text_width(text):
    """Display width of one line (wide East Asian characters count 2)."""
    if text.isascii():
        return len(text)
    return sum(_char_width(char) for char in text)


def _block_width(text):
    return max(text_width(line) for line in text.split("\n"))


def render_table(fields, rows, max_width=None):
    """A left-aligned table in PrettyTable's default style (frame, header rule, 1-space
    padding); max_width maps a field name to its wrap width."""
    max_width = max_width or {}
    rows = [["" if cell is None else str(cell).expandtabs() for cell in row] for row in rows]
    widths = [text_width(field) for field in fields]
    for row in rows:
        for i, cell in enumerate(row):
            size = _block_width(cell)
            if fields[i] in max_width:
                size = min(size, max_width[fields[i]])
            widths[i] = max(widths[i], size)

    def line(cells):
        return "|" + "|".join(" " + cell + " " * (width - text_width(cell)) + " "
                              for cell, width in zip(cells, widths)) + "|"

    rule = "+" + "+".join("-" * (width + 2) for width in widths) + "+"
    out = [rule, line([field[:width] for field, width in zip(fields, widths)]), rule]
    for row in rows:
        cells = []
        for cell, width in zip(row, widths):
            parts = []
            for part in cell.split("\n"):
                if text_width(part) > width:
                    part = textwrap.fill(part, width)
                parts.extend(part.split("\n"))
            cells.append(parts)
        height = max(len(parts) for parts in cells)
        for y in range(height):
            out.append(line([parts[y] if y < len(parts) else "" for parts in cells]))
    out.append(rule)
    return "\n".join(out)


def _layer_table(layers):
    columns = [("digest", "Compressed Digest"), ("diff_id", "DiffID"), ("size", "Size"),
               ("compression", "Compression"), ("created_by", "Created By")]
    present = [(key, title) for key, title in columns if any(key in layer for layer in layers)]
    fields = ["#"] + [title for _key, title in present]
    rows = []
    for layer in layers:
        row = [layer.get("index")]
        for key, _title in present:
            value = layer.get(key)
            if key in ("digest", "diff_id"):
                value = truncate_digest(value)
            elif key == "size":
                value = format_size(value)
            row.append("" if value is None else value)
        rows.append(row)
    return render_table(fields, rows, {"Created By": CREATED_BY_WIDTH})


def render_text(info):
    """The human-readable info output of 0.4.17 (B.4), without a final newline."""
    out = ["Image:         %s:%s" % (info["image"], info["tag"])]
    if "media_type" in info:
        out.append("Media type:    %s" % info["media_type"])
    if "schema_version" in info:
        out.append("Schema:        v%s" % info["schema_version"])
    if "architecture" in info:
        arch = info["architecture"]
        if info.get("variant"):
            arch += "/%s" % info["variant"]
        out.append("Platform:      %s/%s" % (info.get("os", ""), arch))
    if "created" in info:
        out.append("Created:       %s" % info["created"])
    if "config_digest" in info:
        out.append("Config digest: %s" % info["config_digest"])
    if "config_size" in info:
        out.append("Config size:   %s" % format_size(info["config_size"]))

    out.append("")
    out.append("Layers: %d" % info.get("layer_count", 0))
    if "total_compressed_size" in info:
        out.append("Total compressed size: %s" % format_size(info["total_compressed_size"]))
    layers = info.get("layers") or []
    if layers:
        out.append("")
        out.append(_layer_table(layers))

    if info.get("platforms"):
        out.append("")
        out.append("Platforms: %d (%s %s)" % (len(info["platforms"]),
                                            info.get("index_media_type"),
                                            info.get("index_digest")))
        out.append(render_table(["Platform", "Digest", "Size"], [
            [platform_name(p), truncate_digest(p["digest"]), format_size(p.get("size"))]
            for p in info["platforms"]]))

    if "history_count" in info:
        out.append("")
        out.append("History: %d entries (%d empty)"
                   % (info["history_count"], info.get("empty_layer_count", 0)))

    keys = ("entrypoint", "cmd", "working_dir", "env", "labels", "exposed_ports", "volumes")
    if any(key in info for key in keys):
        out.append("")
        out.append("Container Config:")
        if info.get("entrypoint"):
            out.append("  Entrypoint: %s" % (info["entrypoint"],))
        if info.get("cmd"):
            out.append("  Cmd:        %s" % (info["cmd"],))
        if info.get("working_dir"):
            out.append("  WorkingDir: %s" % (info["working_dir"],))
        if info.get("exposed_ports"):
            out.append("  Ports:      %s" % ", ".join(info["exposed_ports"]))
        if info.get("volumes"):
            out.append("  Volumes:    %s" % ", ".join(info["volumes"]))
        if info.get("env"):
            out.append("  Environment:")
            out.extend("    %s" % (env,) for env in info["env"])
        if isinstance(info.get("labels"), dict) and info["labels"]:
            out.append("  Labels:")
            out.extend("    %s=%s" % (key, value) for key, value in info["labels"].items())
    return "\n".join(out)


__all__ = ["image_info", "render_text", "render_table", "load_config", "truncate_digest",
           "compression_of"]
