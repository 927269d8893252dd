"""oci:// sink (0.4.17 B.7): PATH/rootfs, PATH/config.json, PATH/container-config.json.

The bundle is assembled in a sibling temp directory and renamed to PATH when complete.
Verification checks the bundle's own files (0.4.17 looked for a manifest.json that a
bundle never has and so always failed, E.2 #1).
"""
import os
import shutil
import tempfile

from ...rootfs import runc
from ...rootfs.background import BackgroundExpander
from ..base import ImageSink
from ..filewriter import FileLayerWriter
from ..outpath import empty_dir_output


class OciBundleSink(ImageSink):
    def __init__(self, path):
        self.path = os.path.abspath(path)
        self._stage = None
        self._expander = None

    @classmethod
    def from_uri(cls, uri, options):
        return cls(uri.path)

    def begin(self, source):
        self.path = empty_dir_output(self.path)
        parent = os.path.dirname(self.path)
        self._stage = tempfile.mkdtemp(prefix="." + os.path.basename(self.path) + ".",
                                       suffix=".partial", dir=parent)
        os.chmod(self._stage, 0o755)
        os.mkdir(os.path.join(self._stage, "layers"))
        self._expander = BackgroundExpander(os.path.join(self._stage, "rootfs"), self.helpers)

    def _committed(self, result, target, created):
        self._expander.add(result.index, target)

    def open_layer(self, ref):
        layers = os.path.join(self._stage, "layers")
        return FileLayerWriter(layers, lambda result: os.path.join(layers, "%d.tar" % ref.index),
                               self._committed)

    def finish(self, config_bytes, results):
        self._expander.finish(len(results))
        self._expander = None
        shutil.rmtree(os.path.join(self._stage, "layers"))
        runc.write_bundle_files(self._stage, config_bytes)
        # rename(2) replaces an empty directory in one step (no moment without PATH)
        # and fails if something was put in it since begin()
        os.replace(self._stage, self.path)
        self._stage = None

    def abort(self):
        if self._expander is not None:
            self._expander.cancel()
            self._expander = None
        if self._stage:
            shutil.rmtree(self._stage, ignore_errors=True)
            self._stage = None

    def verify(self, full=False):
        errors = []
        for name in ("rootfs", "config.json", "container-config.json"):
            if not os.path.exists(os.path.join(self.path, name)):
                errors.append("Bundle file missing: %s" % os.path.join(self.path, name))
        return errors
