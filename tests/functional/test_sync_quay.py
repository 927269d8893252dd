"""quay:// entries resolved through the quay API stand-in, the images on the local
docker-registry: repository and tag pagination, GLOB, TAG, since and the token."""
import datetime

import pytest

from occystrap.errors import OccystrapError
from occystrap.mirror.model import Entry, compile_tags
from occystrap.mirror.resolve import resolve
from tests.quaystandin import QuayStandIn

OPTIONS = {"insecure": True, "retries": 0}
TOKEN = "s3cret"


def _ts(day):
    return int(datetime.datetime.strptime(day, "%Y-%m-%d")
               .replace(tzinfo=datetime.timezone.utc).timestamp())


def _tags(*names, start="2024-03-01"):
    return [{"name": name, "start_ts": _ts(start)} for name in names]


REPOS = {"kolla": {
    "nova-api": {"last_modified": _ts("2024-06-01"),
                 "tags": _tags("2024.1", "2024.2", "latest", start="2024-06-01")
                 + _tags("2023.1", start="2023-05-01")
                 + [{"name": "old", "start_ts": _ts("2023-01-01"),
                     "end_ts": _ts("2023-02-01")}]},
    "nova-compute": {"last_modified": _ts("2024-06-02"), "tags": _tags("2024.1", "latest")},
    "glance-api": {"last_modified": _ts("2023-01-01"), "tags": _tags("latest")},
    "nova-conductor": {"last_modified": _ts("2024-06-03"), "tags": _tags("2024.1")},
}}


@pytest.fixture
def quay():
    with QuayStandIn(REPOS, token=TOKEN, repo_page=2) as standin:
        yield standin


def run(quay, path, registry_url, destination="registry://dst:5000/mirror", token=TOKEN,
        extra="", **rules):
    source = "quay://%s?token=%s&api=%s&registry=%s%s" % (path, token, quay.url,
                                                         registry_url, extra)
    return resolve(Entry(7, source, destination, **rules), OPTIONS)


def test_glob_and_every_active_tag(quay, registry, monkeypatch):
    monkeypatch.setattr("occystrap.mirror.resolve.QUAY_PAGE", 2)
    jobs = run(quay, "kolla/nova-*", registry.url)
    host = registry.url
    expected = [("nova-api", t) for t in ("2024.1", "2024.2", "latest", "2023.1")] + \
        [("nova-compute", t) for t in ("2024.1", "latest")] + [("nova-conductor", "2024.1")]
    assert [(j.source, j.destination) for j in jobs] == [
        ("registry://%s/kolla/%s:%s" % (host, repo, tag),
         "registry://dst:5000/mirror/%s:%s" % (repo, tag)) for repo, tag in expected]
    # both listings were paged: next_page cursors and page=N with has_additional
    assert any(q.get("next_page") for p, q in quay.requests if p == "/api/v1/repository")
    assert any(q.get("page") == "2" for p, q in quay.requests if p.endswith("/tag/"))
    assert all(q.get("onlyActiveTags") == "true" for p, q in quay.requests
               if p.endswith("/tag/"))


def test_specific_tag_and_tag_rules(quay, registry):
    jobs = run(quay, "kolla/*:latest", registry.url)
    assert [j.source.rsplit("/", 1)[1] for j in jobs] == [
        "glance-api:latest", "nova-api:latest", "nova-compute:latest"]
    ruled = run(quay, "kolla/nova-api", registry.url, tags=compile_tags([r"2024\..*"]))
    assert [j.source.rsplit(":", 1)[1] for j in ruled] == ["2024.1", "2024.2"]


def test_since(quay, registry):
    jobs = run(quay, "kolla", registry.url, extra="&since=2024-02-01")
    assert [j.source.split("/kolla/")[1] for j in jobs] == [
        "nova-api:2024.1", "nova-api:2024.2", "nova-api:latest", "nova-compute:2024.1",
        "nova-compute:latest", "nova-conductor:2024.1"]
    assert any(q.get("last_modified") == "true" for p, q in quay.requests)
    with pytest.raises(OccystrapError, match="Invalid since date 'x', expected YYYY-MM-DD"):
        run(quay, "kolla", registry.url, extra="&since=x")


def test_ocidir_destination_names(quay, registry):
    jobs = run(quay, "kolla/nova-c*:latest", registry.url, destination="ocidir:///tmp/l")
    assert [j.destination for j in jobs] == ["ocidir:///tmp/l:nova-compute_latest"]


def test_bad_token(quay, registry):
    with pytest.raises(OccystrapError) as caught:
        run(quay, "kolla", registry.url, token="wrong")
    message = str(caught.value)
    assert message.startswith("entry 7 (quay://kolla): Authentication failed")
    assert "wrong" not in message and "\n" not in message


def test_default_registry_is_quay_io(quay):
    source = "quay://kolla/glance-api?token=%s&api=%s" % (TOKEN, quay.url)
    jobs = resolve(Entry(1, source, "registry://dst:5000/m"), OPTIONS)
    assert [j.source for j in jobs] == ["registry://quay.io/kolla/glance-api:latest"]


def test_jobs_point_at_images_that_exist(quay, registry, tmp_path):
    """The local registry holds what the stand-in lists, so a job's source is readable."""
    from tests import imagebuilder as ib
    from tests.cli import occystrap
    tarball = tmp_path / "i.tar"
    ib.build_image(tarball, [ib.layer([("file", "x", b"x")])])
    occystrap("--insecure", "process", "tar://%s" % tarball,
              "registry://%s/kolla/nova-conductor:2024.1" % registry.url, check=True)
    (job,) = run(quay, "kolla/nova-conductor", registry.url)
    occystrap("--insecure", "process", job.source, "tar://%s" % (tmp_path / "o.tar"),
              check=True)


@pytest.mark.parametrize("body", [b"not json", b'{"repositories": "x"}', b"[]",
                                  b'{"repositories": [{"name": 3}]}'])
def test_bad_repository_listing(quay, registry, body):
    quay.broken["/api/v1/repository"] = (200, body)
    with pytest.raises(OccystrapError, match=r"^entry 7 \(quay://kolla\): quay API"):
        run(quay, "kolla", registry.url)


def test_bad_tag_listing(quay, registry):
    quay.broken["/api/v1/repository/kolla/nova-api/tag/"] = (200, b'{"tags": [1]}')
    with pytest.raises(OccystrapError, match="not a list of tags"):
        run(quay, "kolla/nova-api", registry.url)
