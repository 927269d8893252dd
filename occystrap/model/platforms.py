"""Choosing images from a manifest list / OCI index (0.4.17 B.9, fixed), and the
`--platform` grammar.

0.4.17 demanded an exact variant match, so `--architecture arm64` never matched Docker
Hub's `arm64/v8`.  Here the variant is optional where it is unambiguous, and arm64
without a variant means v8 (the OCI image-index platform rules).

`--platform` is `all` or `OS/ARCH[/VARIANT][,...]`: one platform picks one image (as
--os/--architecture/--variant do), `all` or several keep the index.
"""
from ..errors import InputError, OptionError
from . import is_digest

DEFAULT_VARIANTS = {"arm64": "v8"}


def _variant(platform):
    variant = platform.get("variant") or ""
    return variant or DEFAULT_VARIANTS.get(platform.get("architecture"), "")


def select(index, os_name="linux", architecture="amd64", variant=""):
    """The manifest descriptor of `index` for the wanted platform.

    :raises InputError: naming the platforms on offer when none or several match.
    """
    # entries a registry got wrong (no platform object, a bad digest) are never chosen
    manifests = [m for m in index.get("manifests") or [] if isinstance(m, dict)
                 and isinstance(m.get("platform"), dict) and is_digest(m.get("digest"))]
    candidates = [m for m in manifests
                  if (m.get("platform") or {}).get("os") == os_name
                  and (m.get("platform") or {}).get("architecture") == architecture]
    if variant:
        candidates = [m for m in candidates if _variant(m["platform"]) == variant]
    elif len({_variant(m["platform"]) for m in candidates}) > 1:
        default = DEFAULT_VARIANTS.get(architecture, "")
        preferred = [m for m in candidates if _variant(m["platform"]) == default]
        if not preferred:
            raise InputError("Several variants of %s/%s in the manifest list (%s): choose "
                             "one with --variant" % (os_name, architecture, ", ".join(sorted(
                                 {_variant(m["platform"]) for m in candidates}))))
        candidates = preferred
    if not candidates:
        offered = _offered(manifests)
        raise InputError("Could not find a matching manifest for this os / architecture / "
                         "variant (%s/%s%s); available: %s" % (
                             os_name, architecture, "/" + variant if variant else "",
                             ", ".join(offered) or "none"))
    return candidates[0]


def _offered(manifests):
    return sorted({"/".join(str(m["platform"][key]) for key in ("os", "architecture",
                                                                "variant")
                            if m["platform"].get(key)) for m in manifests})


def parse_platforms(text):
    """None (not given), "all", or a list of (os, architecture, variant) from
    `--platform` / `?platform=`.

    :raises OptionError: naming the part that is not OS/ARCH[/VARIANT].
    """
    if text is None or not str(text).strip():
        return None
    text = str(text).strip()
    if text.lower() == "all":
        return "all"
    wanted = []
    for item in text.split(","):
        parts = item.strip().split("/")
        if not 2 <= len(parts) <= 3 or not all(parts):
            raise OptionError("platform %r is not all or OS/ARCH[/VARIANT][,...]" % item.strip())
        wanted.append((parts[0], parts[1], parts[2] if len(parts) == 3 else ""))
    return wanted


def keeps_index(wanted):
    """Whether a --platform choice copies an index (all, or several platforms) rather
    than picking one image."""
    return wanted == "all" or (wanted is not None and len(wanted) > 1)


def select_many(index, wanted):
    """The positions of the entries of index (a dict) that wanted ("all" or a list)
    selects, in the index's order; each platform in the list must match one.

    :raises InputError: a wanted platform is not in the index (naming those on offer).
    """
    entries = index.get("manifests") or []
    if wanted == "all":
        return list(range(len(entries)))
    chosen = []
    for os_name, architecture, variant in wanted:
        chosen.append(select(index, os_name, architecture, variant))
    picked = {id(entry) for entry in chosen}
    return [position for position, entry in enumerate(entries) if id(entry) in picked]


def platform_option(value):
    """The value type of a `?platform=` URI option (uri.check_options): checked, kept
    as typed."""
    try:
        parse_platforms(value)
    except OptionError as exc:
        raise ValueError(str(exc)) from None
    return value
