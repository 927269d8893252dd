"""The few Docker Engine API calls docker:// needs: inspect, save (get), load, tag, delete.

They work against dockerd and podman's Docker-compatible service alike; the dialect
differences handled here: podman answers short names as `localhost/NAME` and sends
its load result as a plain `{"stream": ...}` line, dockerd as JSON-lines progress.
Image names are URL-quoted except for the `/`, `:` and `@` of a reference, which both
routers accept literally (`/images/{name:.*}/json`).
"""
import urllib.parse

import urllib3

from ...jsonparse import parse_json, parse_json_prefix
from ...unixhttp import UnixHTTPClient, daemon_address, error_message, one_line
from ...uri import text

CHUNK = 1 << 20
DAEMON_OPTIONS = {"socket": text}     # what docker:// and dockerpush:// URIs accept, both ways


def socket_of(uri):
    """The daemon of a docker:// URI: its `?socket=`, else $DOCKER_HOST, else
    /var/run/docker.sock."""
    return daemon_address(uri.options.get("socket"))


def reference(uri):
    """(name, tag, ref) of a docker:// URI: NAME[:TAG] (default latest) or NAME@DIGEST."""
    name, tag = uri.image_and_tag()
    if "@" in uri.path:
        return name, tag, "%s@%s" % (name, tag)
    return name, tag, "%s:%s" % (name, tag)


def _quote(ref):
    return urllib.parse.quote(ref, safe="/:@")


class DockerAPI:
    """Engine API calls on one socket; errors are raised as `error` (Input/OutputError)."""

    def __init__(self, socket_path, error):
        self.client = UnixHTTPClient(socket_path, error=error)
        self.error = error

    def ping(self):
        """Reach the daemon (and negotiate the API version) before any real work."""
        self.client.api_prefix()

    def inspect(self, ref):
        """`GET /images/{ref}/json` as a dict, or None when the daemon has no such image."""
        response = self.client.request("GET", "/images/%s/json" % _quote(ref), ok=(200, 404))
        if response.status == 404:
            return None
        try:
            inspected = parse_json(response.data)
        except ValueError as exc:
            raise self.error("Docker daemon: bad JSON from image inspect of %s: %s"
                             % (ref, exc)) from None
        if not isinstance(inspected, dict):
            raise self.error("Docker daemon: image inspect of %s is not a JSON object" % ref)
        return inspected

    def save(self, ref, fileobj):
        """Stream `GET /images/{ref}/get` (a docker-save tarball) into fileobj."""
        response = self.client.request("GET", "/images/%s/get" % _quote(ref), stream=True,
                                       timeout=False)
        try:
            for chunk in response.stream(CHUNK):
                fileobj.write(chunk)
        except urllib3.exceptions.HTTPError as exc:
            raise self.error("Docker daemon: reading the saved image %s failed: %s"
                             % (ref, exc)) from None
        finally:
            response.release_conn()
            response.close()

    def load(self, fileobj, size):
        """`POST /images/load` with the tarball as the body; the daemon's "Loaded image"
        lines.  An `error`/`errorDetail` line in the reply raises."""
        response = self.client.request(
            "POST", "/images/load", body=fileobj, stream=True, timeout=False,
            headers={"Content-Type": "application/x-tar", "Content-Length": str(size)},
            ok=range(100, 600))
        if response.status != 200:
            raise self.error("Docker daemon refused the image: %s" % error_message(response))
        loaded = []
        try:
            for line in progress_messages(response, self.error,
                                          "Docker daemon refused the image"):
                stream = line.get("stream")
                if isinstance(stream, str):
                    for text in stream.splitlines():
                        for prefix in ("Loaded image: ", "Loaded image ID: "):
                            if text.startswith(prefix):
                                loaded.append(text[len(prefix):].strip())
        finally:
            response.release_conn()
            response.close()
        return loaded

    def tag(self, image_id, name, tag):
        """`POST /images/{id}/tag?repo=NAME&tag=TAG`."""
        self.client.request("POST", "/images/%s/tag" % _quote(image_id),
                            query={"repo": name, "tag": tag}, ok=(200, 201))

    def delete(self, ref, noprune=True):
        """`DELETE /images/{ref}` (untag); a missing image is not an error."""
        self.client.request("DELETE", "/images/%s" % _quote(ref),
                            query={"noprune": "true" if noprune else "false"}, ok=(200, 404))

    def close(self):
        self.client.close()


def progress_messages(response, error, what):
    """The JSON messages of a daemon progress stream (load, push); an `error` message
    raises error("<what>: <message>") on one line."""
    for line in _json_lines(response):
        if not isinstance(line, dict):
            continue
        if line.get("error") or line.get("errorDetail"):
            detail = line.get("errorDetail") or {}
            message = line.get("error") or detail.get("message") or str(detail)
            raise error("%s: %s" % (what, one_line(str(message))))
        yield line


def _json_lines(response):
    """Parse a JSON-lines (or concatenated JSON) stream; undecodable text is skipped."""
    buffer = ""
    for chunk in response.stream(CHUNK):
        buffer += chunk.decode("utf-8", "replace")
        while True:
            buffer = buffer.lstrip()
            if not buffer:
                break
            try:
                value, end = parse_json_prefix(buffer)
            except ValueError:
                if "\n" in buffer:              # a complete line that is not JSON
                    buffer = buffer.split("\n", 1)[1]
                    continue
                break                           # incomplete: wait for more
            buffer = buffer[end:]
            yield value
