"""A real multi-platform image, built with buildah and pushed to the test registry.

`multiarch` (session-scoped) builds, with buildah on the vfs driver in its own temp
dir, three single-platform images from scratch:

- linux/amd64 and linux/arm64, each two layers: one shared layer (/shared.txt,
  committed once as a base image, so both children reference the identical blob)
  and one layer of their own (/platform.txt, different content per platform);
- linux/arm/v7, the same shape, used only by the three-platform index.

It pushes them to the session registry (tests/functional/conftest.py `registry`):

- `REPO:oci`   OCI image index of amd64 + arm64 (buildah `manifest push --all`)
- `REPO:v2s2`  Docker manifest list of amd64 + arm64 (`--format v2s2`)
- `REPO:three` OCI image index of amd64 + arm64 + arm/v7

and copies `REPO:oci` with `skopeo copy --all` into an OCI image layout
(`.layout`, tag `.layout_tag`) for ocidir:// source tests.

Layers are committed with `--timestamp 1700000000`, so normalize-timestamps (to 0 by
default) really changes every layer.

Use it from a test module with `from tests.multiarch import multiarch_fixture  # noqa: F401`
(the fixture's name is `multiarch`).
"""

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import urllib.request

import pytest

from tests import peers

REPO = 'mp/img'
COMMIT_TIMESTAMP = '1700000000'

OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
ACCEPT = ', '.join([OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST])


def sha256(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


def get_manifest(registry_url, repo, ref):
    """GET /v2/REPO/manifests/REF: (content type, exact bytes, parsed JSON)."""
    request = urllib.request.Request(
        'http://%s/v2/%s/manifests/%s' % (registry_url, repo, ref),
        headers={'Accept': ACCEPT})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request) as response:
        body = response.read()
        return response.headers.get('Content-Type'), body, json.loads(body)


def get_blob(registry_url, repo, digest):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open('http://%s/v2/%s/blobs/%s' % (registry_url, repo, digest)) as response:
        return response.read()


def skopeo_raw(ref, tls_verify=False):
    """Exact bytes `skopeo inspect --raw REF` prints (docker://... or oci:DIR:TAG)."""
    args = ['skopeo', 'inspect', '--raw']
    if ref.startswith('docker://') and not tls_verify:
        args.append('--tls-verify=false')
    proc = subprocess.run(args + [ref], capture_output=True, stdin=subprocess.DEVNULL)
    if proc.returncode:
        raise AssertionError('skopeo inspect --raw %s failed:\n%s'
                             % (ref, proc.stderr.decode(errors='replace')))
    return proc.stdout


class Buildah:
    """buildah on its own root/runroot (vfs), never /var/lib/containers."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.flags = ['--root', os.path.join(workdir, 'root'),
                      '--runroot', os.path.join(workdir, 'run'),
                      '--storage-driver', 'vfs']
        self.env = dict(os.environ, TMPDIR=os.path.join(workdir, 'tmp'))
        os.makedirs(self.env['TMPDIR'], exist_ok=True)

    def __call__(self, *args):
        proc = subprocess.run(['buildah', *self.flags, *args], capture_output=True,
                              text=True, env=self.env, stdin=subprocess.DEVNULL,
                              cwd=self.workdir)
        if proc.returncode:
            raise RuntimeError('buildah %s failed (%d):\n%s'
                               % (' '.join(args), proc.returncode, proc.stderr))
        return proc.stdout.strip()


PLATFORMS = [('linux', 'amd64', ''), ('linux', 'arm64', ''), ('linux', 'arm', 'v7')]


class MultiArch:
    """What the fixture built: registry refs, source index digests, the OCI layout."""

    def __init__(self, registry, layout, layout_tag):
        self.registry = registry
        self.url = registry.url
        self.repo = REPO
        self.layout = layout
        self.layout_tag = layout_tag

    def uri(self, tag):
        """occystrap source/destination URI of REPO:TAG."""
        return 'registry://%s/%s:%s' % (self.url, self.repo, tag)

    def docker_ref(self, tag):
        return 'docker://%s/%s:%s' % (self.url, self.repo, tag)

    def manifest(self, tag):
        return get_manifest(self.url, self.repo, tag)

    def child(self, tag, arch):
        """The index entry of TAG for linux/ARCH."""
        entries = [entry for entry in self.manifest(tag)[2]['manifests']
                   if entry['platform']['architecture'] == arch]
        assert len(entries) == 1, entries
        return entries[0]


def build(registry, workdir):
    b = Buildah(workdir)
    ctx = os.path.join(workdir, 'ctx')
    os.makedirs(ctx)
    with open(os.path.join(ctx, 'shared.txt'), 'w') as f:
        f.write('one layer shared by every platform\n')
    base = b('from', 'scratch')
    b('copy', base, os.path.join(ctx, 'shared.txt'), '/shared.txt')
    b('commit', '-q', '--timestamp', COMMIT_TIMESTAMP, base, 'localhost/mp:base')
    for os_, arch, variant in PLATFORMS:
        name = arch + variant
        path = os.path.join(ctx, name + '.txt')
        with open(path, 'w') as f:
            f.write('only in %s/%s%s\n' % (os_, arch, '/' + variant if variant else ''))
        container = b('from', 'localhost/mp:base')
        b('copy', container, path, '/platform.txt')
        config = ['config', '--os', os_, '--arch', arch]
        if variant:
            config += ['--variant', variant]
        b(*config, container)
        b('commit', '-q', '--timestamp', COMMIT_TIMESTAMP, container, 'localhost/mp:' + name)
    b('manifest', 'create', 'localhost/mp:list')
    b('manifest', 'create', 'localhost/mp:three')
    for _os, arch, variant in PLATFORMS:
        image = 'containers-storage:localhost/mp:' + arch + variant
        if not variant:
            b('manifest', 'add', 'localhost/mp:list', image)
        b('manifest', 'add', 'localhost/mp:three', image)
    dest = 'docker://%s/%s:' % (registry.url, REPO)
    b('manifest', 'push', '-q', '--all', '--format', 'oci', '--tls-verify=false',
      'localhost/mp:list', dest + 'oci')
    b('manifest', 'push', '-q', '--all', '--format', 'v2s2', '--tls-verify=false',
      'localhost/mp:list', dest + 'v2s2')
    b('manifest', 'push', '-q', '--all', '--format', 'oci', '--tls-verify=false',
      'localhost/mp:three', dest + 'three')


@pytest.fixture(scope='session', name='multiarch')
def multiarch_fixture(registry):
    """REPO:oci / REPO:v2s2 / REPO:three in `registry`, plus an OCI layout (see module)."""
    for binary in ('buildah', 'skopeo'):
        if not peers.have(binary):
            pytest.skip('%s is not installed (apt-get install it; see .ci/run)' % binary)
    workdir = tempfile.mkdtemp(prefix='oc-buildah-', dir='/tmp')
    layout_root = tempfile.mkdtemp(prefix='oc-layout-', dir='/tmp')
    try:
        build(registry, workdir)
        layout = os.path.join(layout_root, 'skopeo-layout')
        peers.skopeo('copy', '--all', '--src-tls-verify=false',
                     'docker://%s/%s:oci' % (registry.url, REPO), 'oci:%s:skopeo' % layout)
    finally:
        peers.unmount_under(workdir)
        shutil.rmtree(workdir, ignore_errors=True)
    built = MultiArch(registry, layout, 'skopeo')
    # The fixture's own promises, so a broken build fails here and not in a test.
    for tag, index_type, child_type in (('oci', OCI_INDEX, OCI_MANIFEST),
                                        ('v2s2', DOCKER_LIST, DOCKER_MANIFEST)):
        ctype, _body, index = built.manifest(tag)
        assert ctype == index_type == index['mediaType'], (tag, ctype)
        assert [(e['platform']['os'], e['platform']['architecture'])
                for e in index['manifests']] == [('linux', 'amd64'), ('linux', 'arm64')]
        children = [get_manifest(registry.url, REPO, e['digest'])[2]
                    for e in index['manifests']]
        assert {c['mediaType'] for c in children} == {child_type}
        assert [len(c['layers']) for c in children] == [2, 2]
        assert children[0]['layers'][0]['digest'] == children[1]['layers'][0]['digest']
        assert children[0]['layers'][1]['digest'] != children[1]['layers'][1]['digest']
    assert len(built.manifest('three')[2]['manifests']) == 3
    yield built
    shutil.rmtree(layout_root, ignore_errors=True)
