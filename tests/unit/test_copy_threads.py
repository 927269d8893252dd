"""The copier owns every thread of a copy: the sink's helpers (a background expansion,
an upload's sender) come from the copy's Helpers and are joined when it ends."""
import threading
import time

from occystrap import api
from occystrap.transports import open_sink, open_source
from occystrap.transports.base import Helpers
from occystrap.uri import parse_uri
from tests import imagebuilder as ib


def _ours():
    return [t.name for t in threading.enumerate() if t.name.startswith("occystrap-")
            and t.name != "occystrap-progress"]


def test_expansion_thread_is_the_copys_and_is_gone_after_it(tmp_path):
    path = tmp_path / "in.tar"
    ib.build_image(path, ib.sample_layers())
    sink = open_sink(parse_uri("dir://%s?expand=true" % (tmp_path / "out")))
    seen = []
    begin = sink.begin

    def spy(source):
        begin(source)
        seen.append((sink.helpers, sink.helpers.running))
    sink.begin = spy
    with open_source(parse_uri("tar://%s" % path)) as source:
        api.copy(source, sink, [], parallel=2)
    helpers, running = seen[0]
    assert helpers is not type(sink).helpers        # the copy's own, not the default
    assert running == 1                 # the expansion, started by the sink in begin
    assert helpers.running == 0 and _ours() == []


def test_join_is_bounded():
    helpers = Helpers()
    release = threading.Event()
    helpers.start(release.wait, 30, name="occystrap-test-stuck")
    started = time.monotonic()
    helpers.join(timeout=0.2)
    assert time.monotonic() - started < 2
    assert helpers.running == 1
    release.set()
    helpers.join()
    assert helpers.running == 0
