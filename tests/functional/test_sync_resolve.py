"""sync's resolver against a real docker-registry, ocidir layouts and dir trees:
which jobs each kind of source lists, and where each goes."""
import re
import uuid

import pytest

from occystrap.errors import OccystrapError
from occystrap.mirror import resolve as resolve_module
from occystrap.mirror.model import Entry, compile_tags
from occystrap.mirror.resolve import resolve
from occystrap.transports.registry import listing
from tests import imagebuilder as ib
from tests.cli import occystrap

OPTIONS = {"insecure": True, "retries": 0}
TAGS = ("1.0", "1.1", "2.0", "dev", "latest")


class Below:
    """A stand-in semver constraint (the real one is sync.semver): versions below 2."""

    def allows(self, tag):
        return re.fullmatch(r"\d+\.\d+", tag) is not None and int(tag.split(".")[0]) < 2


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    path = tmp_path_factory.mktemp("resolve") / "image.tar"
    ib.build_image(path, [ib.layer([("file", "hello", b"hi\n")])])
    return path


@pytest.fixture(scope="module")
def pushed(registry, tarball):
    """A unique namespace holding app (TAGS) and mirror/{a,b,c/d} (1.0 each)."""
    space = "rs" + uuid.uuid4().hex[:8]
    for tag in TAGS:
        occystrap("--insecure", "process", "tar://%s" % tarball,
                  "registry://%s/%s/app:%s" % (registry.url, space, tag), check=True)
    for name in ("a", "b", "c/d"):
        occystrap("--insecure", "process", "tar://%s" % tarball,
                  "registry://%s/%s/mirror/%s:1.0" % (registry.url, space, name), check=True)
    return registry.url, space


def entry(source, destination, **rules):
    return Entry(1, source, destination, **rules)


def pairs(jobs):
    return [(job.source, job.destination) for job in jobs]


def test_every_tag(pushed):
    host, space = pushed
    jobs = resolve(entry("registry://%s/%s/app" % (host, space), "registry://dst:5000/copy"),
                   OPTIONS)
    assert pairs(jobs) == [("registry://%s/%s/app:%s" % (host, space, tag),
                            "registry://dst:5000/copy:%s" % tag) for tag in sorted(TAGS)]
    assert all(job.entry.number == 1 for job in jobs)


def test_regex_tags(pushed):
    host, space = pushed
    jobs = resolve(entry("registry://%s/%s/app" % (host, space), "registry://dst:5000/copy",
                         tags=compile_tags([r"1\..*", "dev"])), OPTIONS)
    assert [job.source.rsplit(":", 1)[1] for job in jobs] == ["1.0", "1.1", "dev"]


def test_semver_constraint(pushed):
    host, space = pushed
    jobs = resolve(entry("registry://%s/%s/app" % (host, space), "registry://dst:5000/copy",
                         semver=Below()), OPTIONS)
    assert [job.destination for job in jobs] == ["registry://dst:5000/copy:1.0",
                                                 "registry://dst:5000/copy:1.1"]


def test_many_tags_need_a_repository_destination(pushed):
    host, space = pushed
    with pytest.raises(OccystrapError, match="names a repository, not a tag") as caught:
        resolve(entry("registry://%s/%s/app" % (host, space), "registry://dst:5000/copy:x"),
                OPTIONS)
    assert str(caught.value).startswith("entry 1 (registry://%s/%s/app)" % (host, space))
    assert "\n" not in str(caught.value)


def test_prefix_over_paginated_catalog(pushed, monkeypatch):
    host, space = pushed
    monkeypatch.setattr(resolve_module, "PAGE", 2)
    followed = []
    real = listing.next_page
    monkeypatch.setattr(listing, "next_page",
                        lambda link: followed.append(real(link)) or real(link))
    jobs = resolve(entry("registry://%s/%s/mirror/*" % (host, space),
                         "registry://dst:5000/backup"), OPTIONS)
    assert pairs(jobs) == [
        ("registry://%s/%s/mirror/%s:1.0" % (host, space, name),
         "registry://dst:5000/backup/%s:1.0" % name) for name in ("a", "b", "c/d")]
    assert any(page and page.startswith("/v2/_catalog?") for page in followed)
    ocidir = resolve(entry("registry://%s/%s/mirror/*" % (host, space), "ocidir:///tmp/o"),
                     OPTIONS)
    assert [job.destination for job in ocidir] == [
        "ocidir:///tmp/o:a_1.0", "ocidir:///tmp/o:b_1.0", "ocidir:///tmp/o:c_d_1.0"]


def test_single_tag_and_digest(pushed, skopeo):
    host, space = pushed
    source = "registry://%s/%s/app:1.1" % (host, space)
    assert pairs(resolve(entry(source, "registry://dst:5000/copy"), OPTIONS)) == [
        (source, "registry://dst:5000/copy:1.1")]
    assert pairs(resolve(entry(source, "registry://dst:5000/copy:v1?insecure=true"),
                         OPTIONS)) == [(source, "registry://dst:5000/copy:v1?insecure=true")]
    digest = skopeo.inspect("docker://%s/%s/app:1.1" % (host, space),
                            tls_verify=False)["Digest"]
    pinned = "registry://%s/%s/app@%s" % (host, space, digest)
    assert pairs(resolve(entry(pinned, "registry://dst:5000/copy:pinned"), OPTIONS)) == [
        (pinned, "registry://dst:5000/copy:pinned")]
    with pytest.raises(OccystrapError, match="digest source needs a destination tag"):
        resolve(entry(pinned, "registry://dst:5000/copy"), OPTIONS)


def test_missing_repository(pushed):
    host, space = pushed
    with pytest.raises(OccystrapError, match=r"^entry 1 \(.*\): no repository %s/nothing"
                       % space):
        resolve(entry("registry://%s/%s/nothing" % (host, space), "registry://dst:5000/x"),
                OPTIONS)


def test_ocidir_layout_with_two_tags(tarball, tmp_path):
    layout = tmp_path / "layout"
    for tag in ("one", "two"):
        occystrap("process", "tar://%s" % tarball, "ocidir://%s:%s" % (layout, tag),
                  check=True)
    jobs = resolve(entry("ocidir://%s" % layout, "registry://dst:5000/copy"), OPTIONS)
    assert pairs(jobs) == [("ocidir://%s:%s" % (layout, tag), "registry://dst:5000/copy:%s"
                            % tag) for tag in ("one", "two")]
    jobs = resolve(entry("ocidir://%s" % layout, "ocidir://%s/other" % tmp_path,
                         tags=compile_tags(["two"])), OPTIONS)
    assert pairs(jobs) == [("ocidir://%s:two" % layout, "ocidir://%s/other:two" % tmp_path)]
    single = resolve(entry("ocidir://%s:one" % layout, "registry://dst:5000/copy"), OPTIONS)
    assert pairs(single) == [("ocidir://%s:one" % layout, "registry://dst:5000/copy:one")]


def test_dir_unique_names_tree(pushed, tmp_path):
    host, space = pushed
    tree = tmp_path / "tree"
    for tag in ("1.0", "2.0"):
        occystrap("--insecure", "process", "registry://%s/%s/app:%s" % (host, space, tag),
                  "dir://%s?unique_names=true" % tree, check=True)
    jobs = resolve(entry("dir://%s" % tree, "registry://dst:5000/copy"), OPTIONS)
    image = "%s/app" % space
    assert pairs(jobs) == [("dir://%s?image=%s&tag=%s" % (tree, image.replace("/", "%2F"),
                                                          tag), "registry://dst:5000/copy:%s"
                            % tag) for tag in ("1.0", "2.0")]
    # each job's source is one the dir:// source reads
    back = tmp_path / "back.tar"
    occystrap("process", jobs[1].source, "tar://%s" % back, check=True)
    again = resolve(entry("dir://%s" % tree, "dir://%s/copy?unique_names=true" % tmp_path),
                    OPTIONS)
    assert {job.destination for job in again} == {"dir://%s/copy?unique_names=true" % tmp_path}
    with pytest.raises(OccystrapError, match="tar:// holds one image"):
        resolve(entry("dir://%s" % tree, "tar://%s/x.tar" % tmp_path), OPTIONS)


def test_registry_authentication_failure(registry_basic):
    with pytest.raises(OccystrapError, match=r"^entry 1 \(registry://.*/x/y\): .*authenti"):
        resolve(entry("registry://%s/x/y" % registry_basic.url, "registry://dst:5000/c"),
                OPTIONS)
