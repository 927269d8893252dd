"""The repository explains itself: no document, comment or script cites a file that
lives outside the checkout (a reader of a fresh clone has only the clone)."""
import pathlib
import re
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
# a machine path outside the repository, or a sibling checkout's file
OUTSIDE = re.compile(r"/work/|\.\./shared/|REAL-PEERS|DESIGN\.md|occystrap-0\.4\.17\.md")


def tracked_files():
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    return [ROOT / name for name in names if name != "tests/unit/test_docs.py"]


def test_no_file_outside_the_repository_is_cited():
    cited = []
    for path in tracked_files():
        try:
            text = path.read_text()
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue                    # binary test data, or a symlink into the build
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                cited.append("%s:%d: %s" % (path.relative_to(ROOT), number, line.strip()))
    assert cited == []
