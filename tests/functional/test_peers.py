"""Prove the real-peer fixtures work: one tiny image through skopeo, dockerd,
podman and docker-registry.  Deliberately does not import occystrap."""

import hashlib
import io
import json
import tarfile

import pytest

pytestmark = pytest.mark.functional

REF = 'example.com/peers/smoke:1'


def _add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 1700000000
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def sha256(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


def build_docker_save(path, ref=REF):
    """Write a legacy `docker save` tarball with one layer holding one file.

    Returns (layer diff id, config digest).  The layer is uncompressed, so its
    digest equals its diff id.
    """
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as layer:
        _add(layer, 'hello.txt', b'hello from the peers smoke test\n')
    layer_bytes = buf.getvalue()
    diff_id = sha256(layer_bytes)

    config = json.dumps({
        'architecture': 'amd64',
        'os': 'linux',
        'created': '2023-11-14T22:13:20Z',
        'config': {'Cmd': ['/hello.txt']},
        'rootfs': {'type': 'layers', 'diff_ids': [diff_id]},
        'history': [{'created': '2023-11-14T22:13:20Z', 'created_by': 'peers smoke'}],
    }, sort_keys=True).encode()
    config_digest = sha256(config)
    config_name = config_digest.split(':')[1] + '.json'
    layer_dir = diff_id.split(':')[1]

    manifest = json.dumps([{
        'Config': config_name,
        'RepoTags': [ref],
        'Layers': [layer_dir + '/layer.tar'],
    }]).encode()
    with tarfile.open(path, mode='w', format=tarfile.PAX_FORMAT) as tar:
        _add(tar, layer_dir + '/layer.tar', layer_bytes)
        _add(tar, layer_dir + '/VERSION', b'1.0')
        _add(tar, config_name, config)
        _add(tar, 'manifest.json', manifest)
    return diff_id, config_digest


@pytest.fixture
def image(tmp_path):
    path = tmp_path / 'smoke.tar'
    diff_id, config_digest = build_docker_save(path)
    return path, diff_id, config_digest


def test_skopeo_reads_archive(skopeo, image):
    path, diff_id, config_digest = image
    info = skopeo.inspect('docker-archive:%s' % path)
    assert info['Layers'] == [diff_id]
    manifest = skopeo.inspect('docker-archive:%s' % path, raw=True)
    assert manifest['config']['digest'] == config_digest
    assert [layer['digest'] for layer in manifest['layers']] == [diff_id]
    config = skopeo.inspect('docker-archive:%s' % path, config=True)
    assert config['rootfs']['diff_ids'] == [diff_id]


def test_dockerd_loads_archive(dockerd, image):
    path, diff_id, config_digest = image
    assert REF in dockerd.load(path)
    inspected = dockerd.inspect_image(REF)
    assert inspected['Id'] == config_digest
    assert inspected['RootFS']['Layers'] == [diff_id]
    assert REF in inspected['RepoTags']
    dockerd.docker('rmi', REF)


def test_podman_loads_archive(podman, image):
    path, diff_id, config_digest = image
    assert REF in podman.load(path)
    inspected = podman.inspect_image(REF)
    assert inspected['Id'] == config_digest
    assert inspected['RootFS']['Layers'] == [diff_id]
    assert REF in inspected['RepoTags']
    podman.docker('rmi', REF)


def test_skopeo_copies_into_registry(skopeo, registry, image):
    path, diff_id, config_digest = image
    dest = 'docker://%s/peers/smoke:1' % registry.url
    skopeo('copy', '--dest-tls-verify=false', 'docker-archive:%s' % path, dest)
    manifest = skopeo.inspect(dest, raw=True, tls_verify=False)
    assert manifest['config']['digest'] == config_digest
    assert len(manifest['layers']) == 1  # skopeo gzips the layer on upload
    config = skopeo.inspect(dest, config=True, tls_verify=False)
    assert config['rootfs']['diff_ids'] == [diff_id]


def test_peers_are_private(dockerd, podman, registry):
    """Each peer listens on its own socket or port, not the well-known ones."""
    assert dockerd.socket != '/var/run/docker.sock'
    assert dockerd.socket.startswith(dockerd.dir)
    assert podman.socket.startswith(podman.dir)
    assert registry.url.startswith('127.0.0.1:') and registry.url != '127.0.0.1:5000'
