"""dockerpush://NAME[:TAG][?socket=PATH]: an image read by letting the Docker daemon
(dockerd, or podman's Docker-compatible service) push it into an embedded HTTPS
registry on 127.0.0.1 (spec B.13/B.14).  A source only."""
from .. import register
from .source import DockerPushSource

register("dockerpush", source=DockerPushSource)
