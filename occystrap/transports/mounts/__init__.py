"""mounts://: each layer extracted as an overlayfs lower directory, the image mounted at
PATH/rootfs (needs root; see docs/mounts.md)."""
from .. import register
from .sink import MountsSink

register("mounts", sink=MountsSink)
