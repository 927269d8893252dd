"""The 12 deprecated commands of 0.4.17 (spec A.3), kept for scripts that still call them.

Each one only builds the source/destination URIs and `-f` filter specs of its modern
equivalent and hands them to the same library calls `process` (api.copy_uris) and
`search` use, so both paths behave alike.  As in 0.4.17 they print no Summary line and
do not verify.  click's `deprecated=True` marks the help "(DEPRECATED)" and prints a
DeprecationWarning line on stderr before the command runs.
"""
import os
import sys
import urllib.parse

import click

from ..api import copy_uris
from . import cli
from .search import search

# -- URI builders (pure; unit-tested) -------------------------------------------------

def _path_uri(scheme, path, **options):
    """scheme:// URI of a local path, absolute and quoted so '?', '#' and a leading
    `localhost/` survive the URI grammar (A.4 folds the netloc into the path)."""
    uri = "%s://%s" % (scheme, urllib.parse.quote(os.path.abspath(path)))
    query = [(key, "true") for key, value in options.items() if value]
    return uri + ("?" + urllib.parse.urlencode(query) if query else "")


def _ref(image, tag):
    # a digest (sha256:...) pins with '@'; the tag grammar splits at the last ':'
    return "%s%s%s" % (image, "@" if ":" in tag else ":", tag)


def registry_uri(registry, image, tag):
    return "registry://%s/%s" % (registry, _ref(image, tag))


def docker_uri(image, tag, socket):
    if not socket:                      # the docker:// default: $DOCKER_HOST, else the usual
        return "docker://%s" % _ref(image, tag)
    return "docker://%s?socket=%s" % (_ref(image, tag), urllib.parse.quote(socket, safe="/"))


def tar_uri(path):
    return _path_uri("tar", path)


def dir_uri(path, unique_names=False, expand=False):
    return _path_uri("dir", path, unique_names=unique_names, expand=expand)


def recreate_source_uri(path, image, tag):
    """dir://PATH?image=IMAGE&tag=TAG: the image recreate-image picks from catalog.json."""
    query = urllib.parse.urlencode([("image", image), ("tag", tag)])
    return _path_uri("dir", path) + "?" + query


def timestamp_filters(normalize, timestamp):
    """--normalize-timestamps/--timestamp N as the modern `-f normalize-timestamps:ts=N`."""
    return ["normalize-timestamps:ts=%d" % timestamp] if normalize else []


# -- running ----------------------------------------------------------------------------

def _copy(options, source, destination, filters=()):
    copy_uris(source, destination, filters, options, out=sys.stdout,
              verify=False, verify_full=False)


def _search(ctx, source, pattern, regex, script_friendly):
    ctx.invoke(search, regex=regex, script_friendly=script_friendly, source=source,
               pattern=pattern)


# -- shared options ---------------------------------------------------------------------

def _timestamp_options(func):
    func = click.option("--timestamp", default=0, type=int, show_default=True,
                        help="The mtime to set with --normalize-timestamps.")(func)
    return click.option("--normalize-timestamps", is_flag=True,
                        help="Set every file's mtime (-f normalize-timestamps).")(func)


def _dir_options(func):
    func = click.option("--expand", is_flag=True,
                        help="Also extract the merged root filesystem (dir://...?expand=true).")(func)
    return click.option("--use-unique-names", is_flag=True,
                        help="Name the manifest per image (dir://...?unique_names=true).")(func)


def _search_options(func):
    func = click.option("--script-friendly", is_flag=True,
                        help="Print image:tag:layer:path lines.")(func)
    return click.option("--regex", is_flag=True,
                        help="PATTERN is a regular expression (re.search).")(func)


_socket_option = click.option("--socket",
                              help="Docker Engine API socket (default: $DOCKER_HOST, else "
                                   "/var/run/docker.sock).")


def _legacy(name, summary, modern):
    """A deprecated command whose help names its modern equivalent."""
    return cli.command(name, deprecated=True, short_help=summary,
                       help="%s.\n\nUse instead: occystrap %s" % (summary, modern))


# -- registry ---------------------------------------------------------------------------

@_legacy("fetch-to-tarfile", "Fetch a registry image into a tarball",
         "process registry://REGISTRY/IMAGE:TAG tar://TARFILE")
@click.argument("registry")
@click.argument("image")
@click.argument("tag")
@click.argument("tarfile")
@_timestamp_options
@click.pass_obj
def fetch_to_tarfile(options, registry, image, tag, tarfile, normalize_timestamps, timestamp):
    _copy(options, registry_uri(registry, image, tag), tar_uri(tarfile),
          timestamp_filters(normalize_timestamps, timestamp))


@_legacy("fetch-to-extracted", "Fetch a registry image into a directory",
         "process registry://REGISTRY/IMAGE:TAG dir://PATH")
@click.argument("registry")
@click.argument("image")
@click.argument("tag")
@click.argument("path")
@_dir_options
@click.pass_obj
def fetch_to_extracted(options, registry, image, tag, path, use_unique_names, expand):
    _copy(options, registry_uri(registry, image, tag), dir_uri(path, use_unique_names, expand))


@_legacy("fetch-to-oci", "Fetch a registry image into an OCI bundle",
         "process registry://REGISTRY/IMAGE:TAG oci://PATH")
@click.argument("registry")
@click.argument("image")
@click.argument("tag")
@click.argument("path")
@click.pass_obj
def fetch_to_oci(options, registry, image, tag, path):
    _copy(options, registry_uri(registry, image, tag), _path_uri("oci", path))


@_legacy("fetch-to-mounts", "Fetch a registry image into overlay mounts",
         "process registry://REGISTRY/IMAGE:TAG mounts://PATH")
@click.argument("registry")
@click.argument("image")
@click.argument("tag")
@click.argument("path")
@click.pass_obj
def fetch_to_mounts(options, registry, image, tag, path):
    _copy(options, registry_uri(registry, image, tag), _path_uri("mounts", path))


@_legacy("search-layers", "Search the layers of a registry image",
         "search registry://REGISTRY/IMAGE:TAG PATTERN")
@click.argument("registry")
@click.argument("image")
@click.argument("tag")
@click.argument("pattern")
@_search_options
@click.pass_context
def search_layers(ctx, registry, image, tag, pattern, regex, script_friendly):
    _search(ctx, registry_uri(registry, image, tag), pattern, regex, script_friendly)


# -- tarball and directory --------------------------------------------------------------

@_legacy("tarfile-to-extracted", "Extract a tarball into a directory",
         "process tar://TARFILE dir://PATH")
@click.argument("tarfile")
@click.argument("path")
@_dir_options
@click.pass_obj
def tarfile_to_extracted(options, tarfile, path, use_unique_names, expand):
    _copy(options, tar_uri(tarfile), dir_uri(path, use_unique_names, expand))


@_legacy("search-layers-tarfile", "Search the layers of a tarball",
         "search tar://TARFILE PATTERN")
@click.argument("tarfile")
@click.argument("pattern")
@_search_options
@click.pass_context
def search_layers_tarfile(ctx, tarfile, pattern, regex, script_friendly):
    _search(ctx, tar_uri(tarfile), pattern, regex, script_friendly)


@_legacy("recreate-image", "Rebuild a tarball from a directory",
         "process 'dir://PATH?image=IMAGE&tag=TAG' tar://TARFILE")
@click.argument("path")
@click.argument("image")
@click.argument("tag")
@click.argument("tarfile")
@_timestamp_options
@click.pass_obj
def recreate_image(options, path, image, tag, tarfile, normalize_timestamps, timestamp):
    _copy(options, recreate_source_uri(path, image, tag), tar_uri(tarfile),
          timestamp_filters(normalize_timestamps, timestamp))


# -- Docker Engine ----------------------------------------------------------------------

@_legacy("docker-to-tarfile", "Save a Docker Engine image into a tarball",
         "process 'docker://IMAGE:TAG?socket=SOCKET' tar://TARFILE")
@click.argument("image")
@click.argument("tag")
@click.argument("tarfile")
@_socket_option
@_timestamp_options
@click.pass_obj
def docker_to_tarfile(options, image, tag, tarfile, socket, normalize_timestamps, timestamp):
    _copy(options, docker_uri(image, tag, socket), tar_uri(tarfile),
          timestamp_filters(normalize_timestamps, timestamp))


@_legacy("docker-to-extracted", "Save a Docker Engine image into a directory",
         "process 'docker://IMAGE:TAG?socket=SOCKET' dir://PATH")
@click.argument("image")
@click.argument("tag")
@click.argument("path")
@_socket_option
@_dir_options
@click.pass_obj
def docker_to_extracted(options, image, tag, path, socket, use_unique_names, expand):
    _copy(options, docker_uri(image, tag, socket), dir_uri(path, use_unique_names, expand))


@_legacy("docker-to-oci", "Save a Docker Engine image as an OCI bundle",
         "process 'docker://IMAGE:TAG?socket=SOCKET' oci://PATH")
@click.argument("image")
@click.argument("tag")
@click.argument("path")
@_socket_option
@click.pass_obj
def docker_to_oci(options, image, tag, path, socket):
    _copy(options, docker_uri(image, tag, socket), _path_uri("oci", path))


@_legacy("search-layers-docker", "Search the layers of a Docker Engine image",
         "search 'docker://IMAGE:TAG?socket=SOCKET' PATTERN")
@click.argument("image")
@click.argument("tag")
@click.argument("pattern")
@_socket_option
@_search_options
@click.pass_context
def search_layers_docker(ctx, image, tag, pattern, socket, regex, script_friendly):
    _search(ctx, docker_uri(image, tag, socket), pattern, regex, script_friendly)
