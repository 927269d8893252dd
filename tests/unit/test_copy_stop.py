"""How copy() gives up: when one layer fails (or the copy is signalled) the other layer
threads stop at their next chunk instead of copying their layers to the end
(api._StoppableWriter), and a sink is aborted even when its begin() was cut short."""
import io
import tarfile
import threading

import pytest

from occystrap import api
from occystrap.errors import InputError
from occystrap.transports.base import ImageSource, LayerRef

SIZE = 2 << 30                  # the endless layer's one member: 2 GiB of zeros
STARTED = 4 << 20               # read this much before the other layer fails


class _ZeroTar(io.RawIOBase):
    """A valid tar stream of one SIZE-byte file of zeros; counts what is read."""

    def __init__(self, started):
        info = tarfile.TarInfo("big")
        info.size = SIZE
        self._header = info.tobuf(tarfile.USTAR_FORMAT)
        self._started = started
        self.read_bytes = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        count = min(len(buffer), len(self._header) + SIZE - self.read_bytes)
        head = self._header[self.read_bytes:self.read_bytes + count]
        buffer[:len(head)] = head
        buffer[len(head):count] = bytes(count - len(head))
        self.read_bytes += count
        if self.read_bytes >= STARTED:
            self._started.set()
        return count


class _Source(ImageSource):
    network = True                  # so copy() uses threads on any number of CPUs

    def __init__(self):
        self.started = threading.Event()
        self.endless = _ZeroTar(self.started)

    def _broken(self):
        assert self.started.wait(60), "the other layer never started"
        raise InputError("layer 0 is broken")

    def layers(self):
        return [LayerRef(index=0, name="broken", open=self._broken),
                LayerRef(index=1, name="endless", open=lambda: self.endless)]

    def config_bytes(self):
        return b"{}"


def test_a_failed_layer_stops_the_others():
    source = _Source()
    with pytest.raises(InputError, match="layer 0 is broken"):
        api.copy(source, api.NullSink(), parallel=2, verify=False)
    # stopped at its next chunk, far from the end of its 2 GiB
    assert STARTED <= source.endless.read_bytes < SIZE // 4


class _HalfBegunSink(api.NullSink):
    aborted = False

    def begin(self, source):
        raise KeyboardInterrupt        # as a signal landing in the middle of begin()

    def abort(self):
        self.aborted = True


def test_a_begin_cut_short_is_aborted():
    sink = _HalfBegunSink()
    with pytest.raises(KeyboardInterrupt):
        api.copy(_Source(), sink, verify=False)
    assert sink.aborted
