"""docker://NAME[:TAG][?socket=PATH]: images in a Docker Engine (dockerd or podman's
Docker-compatible service), read with `GET /images/{name}/get` and written with
`POST /images/load`, over the unix socket (default /var/run/docker.sock)."""
from .. import register
from .sink import DockerSink
from .source import DockerSource

register("docker", source=DockerSource, sink=DockerSink)
