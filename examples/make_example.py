#!/usr/bin/env python3
"""Build examples/hello.tar, the small image used by the README examples.

    python examples/make_example.py [--out examples/hello.tar]

A deterministic ``docker save`` style tarball (legacy layout, uncompressed
layers), tagged ``example.com/occystrap/hello:1.0``, with three layers:

1. a base: a few directories and files, a symlink and a sticky /tmp;
2. an app layer whose files have varied mtimes, including a ``.pyc`` file
   (so ``-f normalize-timestamps`` and ``-f exclude:pattern=*.pyc`` both
   visibly change something);
3. a layer that deletes ``etc/motd`` with a whiteout and adds a config file.

Running it again gives byte-identical output.
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from tests import imagebuilder as ib  # noqa: E402

REPOTAG = "example.com/occystrap/hello:1.0"
DAY = 24 * 3600

HELLO_SH = b"""#!/bin/sh
cat /usr/share/hello/greeting.txt
"""

HELLO_PY = b"""import sys


def main():
    print(open('/usr/share/hello/greeting.txt').read().strip())
    return 0


if __name__ == '__main__':
    sys.exit(main())
"""


def base_layer():
    return ib.layer([
        ("dir", "bin"),
        ("file", "bin/hello", HELLO_SH, {"mode": 0o755}),
        ("dir", "etc"),
        ("file", "etc/os-release", b"ID=hello\nVERSION_ID=1.0\n"),
        ("file", "etc/motd", b"Welcome to the occystrap example image.\n"),
        ("dir", "usr"),
        ("dir", "usr/bin"),
        ("symlink", "usr/bin/hello", "../../bin/hello"),
        ("dir", "usr/share"),
        ("dir", "usr/share/hello"),
        ("file", "usr/share/hello/greeting.txt", b"Hello from occystrap!\n"),
        ("dir", "tmp", {"mode": 0o1777}),
    ])


def app_layer():
    def at(days):
        return {"mtime": ib.EPOCH - days * DAY}

    pyc = b"\xa7\r\r\n" + bytes(12) + HELLO_PY[::-1]
    return ib.layer([
        ("dir", "app", at(30)),
        ("file", "app/hello.py", HELLO_PY, at(30)),
        ("file", "app/README.md", b"# hello\n\nA tiny example app.\n",
         at(400)),
        ("file", "app/VERSION", b"1.0\n", {"mtime": ib.EPOCH + 0.5}),
        ("dir", "app/__pycache__", at(2)),
        ("file", "app/__pycache__/hello.cpython-311.pyc", pyc, at(2)),
    ])


def cleanup_layer():
    return ib.layer([
        ("dir", "etc"),
        ("whiteout", "etc/motd"),
        ("file", "etc/hello.conf", b"greeting=/usr/share/hello/greeting.txt\n"),
    ])


CONFIG = {
    "config": {
        "Entrypoint": None,
        "Cmd": ["/bin/hello"],
        "Labels": {"org.opencontainers.image.title": "hello"},
        "ExposedPorts": None,
    },
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(HERE, "hello.tar"))
    args = parser.parse_args(argv)
    info = ib.build_image(args.out,
                          [base_layer(), app_layer(), cleanup_layer()],
                          repotag=REPOTAG, config=CONFIG)
    print("wrote %s (%d bytes), config %s" % (
        args.out, os.path.getsize(args.out), info["config_digest"]))


if __name__ == "__main__":
    main()
