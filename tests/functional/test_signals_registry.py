"""SIGTERM during a push to a real registry (issue 8 §3): nothing is published and the
upload session of the layer in progress is deleted, not left to expire.  The source is
tests/stallregistry.py, so the push is certainly in progress when it is signalled."""
import glob
import os
import signal
import urllib.error
import urllib.request

import pytest

from tests.stallregistry import StallingRegistry, assert_reported, signalled_run, \
    stall_layers


def test_sigterm_during_a_push_publishes_nothing(registry):
    uploads = os.path.join(registry.dir, "data", "docker", "registry", "v2", "repositories",
                           "occy", "sigterm-push", "_uploads", "*")
    with StallingRegistry(stall_layers()) as source:
        # signalled once the stalled layer's upload session is open on the registry
        status, err = signalled_run(source, "registry://%s/occy/sigterm-push:1" % registry.url,
                                    signal.SIGTERM, ready=lambda: glob.glob(uploads))
    assert_reported(status, err, signal.SIGTERM)
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen("http://%s/v2/occy/sigterm-push/manifests/1" % registry.url)
    missing.value.close()
    assert missing.value.code == 404
    # A deleted session loses its data and startedat files.  (Distribution 2.8 may write
    # hashstates/ once more after the DELETE, as the PATCH it cut short closes: its race.)
    assert glob.glob(os.path.join(uploads, "data")) == []
    assert glob.glob(os.path.join(uploads, "startedat")) == []
