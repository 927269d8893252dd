"""The resend window of a streamed registry upload (registry sink's _Upload).

After a failed PATCH the upload goes on from the offset the registry reports; what it
resends must be exactly the blob's bytes from there, and the window must still hold
the last WINDOW bytes handed over (docker-registry drops a cut session, so offsets
inside the window only come from other registries: tested here, without one).
"""
import collections

import pytest

from occystrap.transports.registry.sink import CHUNK, WINDOW, _Upload


def _blob(size):
    """size bytes in which every offset shows (a period prime to the chunk size)."""
    return (bytes(range(251)) * (size // 251 + 1))[:size]


@pytest.mark.parametrize("sizes", [[CHUNK] * 3, [CHUNK] * 12, [3 * CHUNK, 5 * CHUNK,
                                                                7 * CHUNK, 100]])
def test_window_resends_exactly_from_the_offset(sizes):
    blob = _blob(sum(sizes))
    upload = _Upload(sink=None)
    position = 0
    for size in sizes:
        upload._keep(blob[position:position + size])
        position += size
    assert upload._end == len(blob)
    assert upload._end - upload._start >= min(WINDOW, len(blob))   # the last WINDOW kept
    for offset in sorted({upload._start, upload._start + 1, (upload._start + len(blob)) // 2,
                          len(blob) - 1, len(blob)}):
        resumed = _Upload(sink=None)
        resumed._window = collections.deque(upload._window)
        resumed._start, resumed._end = upload._start, upload._end
        resumed._skip_to(offset)
        assert resumed._start == offset
        assert b"".join(resumed._window) == blob[offset:]
