"""The paginated listings of the distribution API: a repository's tags
(`/v2/NAME/tags/list`) and a registry's repositories (`/v2/_catalog`).

Shared by RegistrySource.tags() and `sync`, which lists whole repositories and
prefixes; both follow the `Link: <...>; rel="next"` header the spec defines.
"""
import re

from ...errors import InputError
from ...jsonparse import parse_json

PAGE = 1000             # n= of each request: the most Distribution 2.8 returns at once


def next_page(link):
    """The path of a `Link: </v2/...>; rel="next"` header, or None."""
    found = re.match(r'^\s*<([^>]+)>\s*;\s*rel="?next"?', link or "")
    return found.group(1) if found else None


def _pages(client, path, scope, key, what):
    """Every string of the `key` lists of the pages from path on."""
    names = []
    while path:
        response = client.request("GET", path, scope=scope)
        try:
            page = parse_json(response.data)
            found = (page.get(key) or []) if isinstance(page, dict) else None
        except ValueError:
            found = None
        if not isinstance(found, list) or not all(isinstance(n, str) for n in found):
            raise InputError("%s is not a list of %s" % (what, key))
        names.extend(found)
        path = next_page(response.headers.get("Link"))
    return names


def list_tags(client, repository, page=PAGE):
    """Every tag of repository (`null` tags, an emptied repository: none)."""
    return _pages(client, "/v2/%s/tags/list?n=%d" % (repository, page),
                  "repository:%s:pull" % repository, "tags", "tags/list of %s" % repository)


def list_repositories(client, page=PAGE):
    """Every repository the registry's catalog lists (it needs registry:catalog:*)."""
    return _pages(client, "/v2/_catalog?n=%d" % page, "registry:catalog:*", "repositories",
                  "_catalog of %s" % client.host)
