"""Choosing one image from a manifest list / OCI index (0.4.17 B.9, fixed).

0.4.17 demanded an exact variant match, so `--architecture arm64` never matched Docker
Hub's `arm64/v8`.  Here the variant is optional where it is unambiguous, and arm64
without a variant means v8 (the OCI image-index platform rules).
"""
from ...errors import InputError
from ...model import is_digest

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
        wanted = variant or DEFAULT_VARIANTS.get(architecture, "")
        candidates = [m for m in candidates if _variant(m["platform"]) == wanted]
    elif len({_variant(m["platform"]) for m in candidates}) > 1:
        default = DEFAULT_VARIANTS.get(architecture, "")
        preferred = [m for m in candidates if _variant(m["platform"]) == default]
        if not preferred:
            raise InputError("Several variants of %s/%s in the manifest list (%s): choose "
                             "one with --variant" % (os_name, architecture, ", ".join(sorted(
                                 {_variant(m["platform"]) for m in candidates}))))
        candidates = preferred
    if not candidates:
        offered = sorted({"/".join(str(m["platform"][key]) for key in
                                   ("os", "architecture", "variant") if m["platform"].get(key))
                          for m in manifests})
        raise InputError("Could not find a matching manifest for this os / architecture / "
                         "variant (%s/%s%s); available: %s" % (
                             os_name, architecture, "/" + variant if variant else "",
                             ", ".join(offered) or "none"))
    return candidates[0]
