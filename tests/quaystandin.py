"""A stand-in for quay.io's REST API v1, the two listings `quay://` uses.

Responses follow quay's documented shapes: GET /api/v1/repository?namespace=ORG
answers {"repositories": [...], "next_page": CURSOR} (no next_page on the last page);
GET /api/v1/repository/ORG/REPO/tag/ answers {"tags": [...], "page": N,
"has_additional": BOOL}, honours limit, page, specificTag and onlyActiveTags.  With a
token set, any other Authorization than `Bearer TOKEN` gets a 401.  `requests` records
each (path, query) so tests can see the pagination happen; `broken` makes a path
answer bytes of the test's choosing.
"""
import http.server
import json
import threading
import urllib.parse


class QuayStandIn:
    """repositories: {org: {repo: {"last_modified": epoch, "tags": [{name, start_ts,
    end_ts?}]}}}; repo_page: repositories per page of the repository listing."""

    def __init__(self, repositories, token=None, repo_page=2):
        self.repositories = repositories
        self.token = token
        self.repo_page = repo_page
        self.requests = []
        self.broken = {}            # path -> (status, raw body) answered instead
        self._server = None
        self._thread = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self._server.server_address[1]

    def start(self):
        standin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                standin._answer(self)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- answers -----------------------------------------------------------------------
    def _answer(self, handler):
        split = urllib.parse.urlsplit(handler.path)
        query = dict(urllib.parse.parse_qsl(split.query))
        self.requests.append((split.path, query))
        if self.token and handler.headers.get("Authorization") != "Bearer " + self.token:
            return _send(handler, 401, {"error": "Requires authentication"})
        if split.path in self.broken:
            status, body = self.broken[split.path]
            return _send(handler, status, body, raw=True)
        parts = split.path.strip("/").split("/")
        if parts == ["api", "v1", "repository"]:
            return self._repository_list(handler, query)
        if len(parts) == 6 and parts[:3] == ["api", "v1", "repository"] and parts[5] == "tag":
            return self._tag_list(handler, parts[3], parts[4], query)
        return _send(handler, 404, {"error": "Not Found"})

    def _repository_list(self, handler, query):
        org = query.get("namespace")
        repos = sorted(self.repositories.get(org, {}).items())
        start = int(query.get("next_page") or 0)
        chosen = repos[start:start + self.repo_page]
        listed = []
        for name, repo in chosen:
            item = {"namespace": org, "name": name, "description": None, "is_public": True,
                    "kind": "image", "state": "NORMAL"}
            if query.get("last_modified") == "true":
                item["last_modified"] = repo.get("last_modified")
            listed.append(item)
        document = {"repositories": listed}
        if start + self.repo_page < len(repos):
            document["next_page"] = str(start + self.repo_page)
        _send(handler, 200, document)

    def _tag_list(self, handler, org, name, query):
        repo = self.repositories.get(org, {}).get(name)
        if repo is None:
            return _send(handler, 404, {"error": "Not Found"})
        tags = repo["tags"]
        if query.get("onlyActiveTags") == "true":
            tags = [t for t in tags if "end_ts" not in t]
        if "specificTag" in query:
            tags = [t for t in tags if t["name"] == query["specificTag"]]
        limit = min(int(query.get("limit", 50)), 100)
        page = int(query.get("page", 1))
        chosen = tags[(page - 1) * limit:page * limit]
        _send(handler, 200, {"tags": [dict(t, reversion=False, manifest_digest="sha256:" +
                                           "0" * 64) for t in chosen],
                             "page": page, "has_additional": page * limit < len(tags)})


def _send(handler, status, document, raw=False):
    body = document if raw else json.dumps(document).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
