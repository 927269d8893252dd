"""oci://: an OCI runtime bundle (rootfs/ + config.json) that runc can start."""
from .. import register
from .sink import OciBundleSink

register("oci", sink=OciBundleSink)
