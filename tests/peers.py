"""Start and stop real container peers (dockerd, podman, docker-registry) on loopback.

Plain helpers with no pytest dependency, so scripts and benchmarks can use them
too.  Every peer lives in its own temporary directory (sockets, data roots,
logs) and listens on a unix socket there or on a free 127.0.0.1 port: never on
/var/run/docker.sock, /var/lib/docker, /var/lib/containers or a well-known
port, because other programs on the machine may run their own daemons.

Each peer is a Debian package (.ci/run installs them) run as a plain background
process: no systemd, no network.  What it took to make each one work here is said in
its class below.
"""

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

STOP_TIMEOUT = 15.0


def have(binary):
    """True when `binary` is on PATH (tests skip on this, and only on this)."""
    return shutil.which(binary) is not None


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def pid_alive(pid):
    """True if `pid` runs; a zombie (state Z) counts as dead.

    Daemons are reparented to PID 1 when a script exits, so a plain kill(pid, 0)
    would report a zombie that nobody reaps as alive.
    """
    try:
        with open('/proc/%d/stat' % pid) as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # The state follows the command name in parentheses, which may hold spaces.
    return stat.rsplit(')', 1)[1].split()[0] not in ('Z', 'X')


def unmount_under(path):
    """Unmount everything mounted below `path`, deepest first.

    podman's overlay graph root leaves a private bind mount behind; without
    this, removing the temp dir fails with "Device or resource busy".
    """
    path = os.path.realpath(path)
    mounts = []
    with open('/proc/self/mountinfo') as f:
        for line in f:
            point = line.split()[4].encode().decode('unicode_escape')
            if point == path or point.startswith(path + '/'):
                mounts.append(point)
    for point in sorted(set(mounts), key=len, reverse=True):
        if subprocess.run(['umount', point], capture_output=True).returncode:
            subprocess.run(['umount', '-l', point], capture_output=True)


def unix_ping(sock_path, timeout=1.0):
    """True when a Docker-API socket answers GET /_ping with 200 OK."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(sock_path)
            s.sendall(b'GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n')
            reply = b''
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                reply += chunk
    except OSError:
        return False
    return reply.startswith(b'HTTP/1.') and reply.split(b' ', 2)[1] == b'200'


def http_ok(url, timeout=1.0, context=None):
    """True when `url` answers (any HTTP status counts: the server is up).

    `context` is an ssl.SSLContext for https URLs (e.g. trusting a test CA).
    """
    handlers = [urllib.request.ProxyHandler({})]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(url, timeout=timeout):
            return True
    except urllib.error.HTTPError as e:
        e.close()
        return True
    except OSError:
        return False


def skopeo(*args, check=True):
    """Run `skopeo ARGS`; with check, raise AssertionError carrying stderr."""
    proc = subprocess.run(['skopeo', *args], capture_output=True, text=True)
    if check and proc.returncode:
        raise AssertionError('skopeo %s failed (%d):\n%s'
                             % (' '.join(args), proc.returncode, proc.stderr))
    return proc


def skopeo_inspect(transport_ref, raw=False, config=False, tls_verify=True):
    """`skopeo inspect [--raw|--config] REF` parsed as JSON.

    tls_verify=False is for our plain-HTTP and self-signed registries.
    """
    args = ['inspect']
    if raw:
        args.append('--raw')
    if config:
        args.append('--config')
    if not tls_verify:
        args.append('--tls-verify=false')
    return json.loads(skopeo(*args, transport_ref).stdout)


class Peer:
    """A daemon run in its own temp dir, stopped by PID, unmounted, removed."""

    name = 'peer'
    start_timeout = 30.0

    def __init__(self):
        self.dir = None
        self.proc = None
        self.log_path = None
        self.startup_seconds = None
        self._log = None

    # Subclasses fill in these two.
    def command(self):
        raise NotImplementedError

    def ready(self):
        raise NotImplementedError

    def env(self):
        return dict(os.environ)

    def prepare(self):
        """Write config files into self.dir before the daemon starts."""

    def start(self):
        # A short path under /tmp: unix socket paths are limited to 107 bytes,
        # and dockerd nests containerd's socket several levels deeper.
        self.dir = tempfile.mkdtemp(prefix='oc-%s-' % self.name, dir='/tmp')
        self.prepare()
        self.log_path = os.path.join(self.dir, 'log')
        self._log = open(self.log_path, 'wb')
        began = time.monotonic()
        self.proc = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, env=self.env(), cwd=self.dir,
            start_new_session=True)  # keep ^C in the test run away from it
        while not self.ready():
            if self.proc.poll() is not None:
                message = ('%s exited with %s during start:\n%s'
                           % (self.name, self.proc.returncode, self.log_tail()))
                self.stop()
                raise RuntimeError(message)
            if time.monotonic() - began > self.start_timeout:
                log = self.log_tail()
                self.stop()
                raise RuntimeError('%s not ready after %.0f s:\n%s'
                                   % (self.name, self.start_timeout, log))
            time.sleep(0.05)
        self.startup_seconds = time.monotonic() - began
        return self

    def log_tail(self, lines=40):
        try:
            with open(self.log_path, errors='replace') as f:
                return ''.join(f.readlines()[-lines:])
        except (OSError, TypeError):
            return ''

    def stop(self):
        """TERM, wait up to 15 s, then KILL; unmount and remove the temp dir."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self._wait_helpers()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.dir is not None:
            unmount_under(self.dir)
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        self.proc = None

    def _wait_helpers(self):
        """Wait for helper processes the daemon started itself (see Dockerd)."""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class DockerCLI:
    """`docker` CLI calls against this peer's own Docker-API socket."""

    socket = None
    dir = None

    def docker(self, *args, check=True, input=None):
        env = dict(os.environ)
        env.pop('DOCKER_HOST', None)
        env.pop('DOCKER_CONTEXT', None)
        # Own client config: never read or write ~/.docker (logins, contexts).
        env['DOCKER_CONFIG'] = os.path.join(self.dir, 'docker-config')
        proc = subprocess.run(['docker', '-H', 'unix://' + self.socket, *args],
                              capture_output=True, text=True, env=env,
                              input=input, stdin=None if input else subprocess.DEVNULL)
        if check and proc.returncode:
            raise AssertionError('docker %s failed (%d):\n%s%s'
                                 % (' '.join(args), proc.returncode, proc.stdout, proc.stderr))
        return proc

    def load(self, tar_path):
        """`docker load -i TAR`; returns its output ("Loaded image: ...")."""
        return self.docker('load', '-i', str(tar_path)).stdout

    def inspect_image(self, ref):
        """`docker image inspect REF` as a dict (the first and only entry)."""
        return json.loads(self.docker('image', 'inspect', ref).stdout)[0]


class Dockerd(DockerCLI, Peer):
    """A real Docker Engine (dockerd) with its own data root and socket.

    No bridge and no iptables: the sandbox has neither, and tests run
    containers with --network none anyway.  dockerd starts (and on TERM
    stops) its own containerd under the exec root.
    """

    name = 'dockerd'

    def __init__(self, storage_driver=None):
        super().__init__()
        self.storage_driver = storage_driver
        self.socket = None

    def prepare(self):
        self.socket = os.path.join(self.dir, 'docker.sock')

    def command(self):
        cmd = ['dockerd',
               '--data-root', os.path.join(self.dir, 'root'),
               '--exec-root', os.path.join(self.dir, 'exec'),
               '--pidfile', os.path.join(self.dir, 'dockerd.pid'),
               '-H', 'unix://' + self.socket,
               '--iptables=false', '--ip6tables=false', '--bridge=none']
        if self.storage_driver:
            cmd.append('--storage-driver=' + self.storage_driver)
        return cmd

    def ready(self):
        return unix_ping(self.socket)

    def _wait_helpers(self):
        # dockerd's own containerd records its pid under the exec root.
        pidfile = os.path.join(self.dir, 'exec', 'containerd', 'containerd.pid')
        try:
            with open(pidfile) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return
        deadline = time.monotonic() + STOP_TIMEOUT
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


REGISTRIES_CONF = '''\
unqualified-search-registries = []
short-name-mode = "permissive"
# containers/image prefix-matches 127.0.0.1:ANYPORT, so pushes to our HTTP
# and self-signed test registries work.
[[registry]]
location = "127.0.0.1"
insecure = true
[[registry]]
location = "localhost"
insecure = true
'''


class Podman(DockerCLI, Peer):
    """`podman system service`: a second Docker-API dialect, own storage.

    Uses runc (crun refuses hybrid cgroups here), cgroupfs and file events
    (no systemd), and its own libpod tmpdir and network config dir so that it
    shares nothing with any other podman on the machine.
    """

    name = 'podman'

    def __init__(self, storage_driver='overlay'):
        super().__init__()
        self.storage_driver = storage_driver
        self.socket = None

    def prepare(self):
        self.socket = os.path.join(self.dir, 'podman.sock')
        self.registries_conf = os.path.join(self.dir, 'registries.conf')
        with open(self.registries_conf, 'w') as f:
            f.write(REGISTRIES_CONF)
        for sub in ('tmp', 'networks', 'vartmp'):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)

    def env(self):
        env = dict(os.environ)
        env['CONTAINERS_REGISTRIES_CONF'] = self.registries_conf
        env['TMPDIR'] = os.path.join(self.dir, 'vartmp')  # image staging
        return env

    def global_flags(self):
        return ['--root', os.path.join(self.dir, 'root'),
                '--runroot', os.path.join(self.dir, 'run'),
                '--tmpdir', os.path.join(self.dir, 'tmp'),
                '--network-config-dir', os.path.join(self.dir, 'networks'),
                '--storage-driver', self.storage_driver,
                '--cgroup-manager', 'cgroupfs',
                '--events-backend', 'file',
                '--runtime', 'runc']

    def command(self):
        return ['podman', *self.global_flags(),
                'system', 'service', '--time=0', 'unix://' + self.socket]

    def ready(self):
        return unix_ping(self.socket)

    def podman(self, *args, check=True):
        """The podman CLI on the same storage as the service."""
        proc = subprocess.run(['podman', *self.global_flags(), *args],
                              capture_output=True, text=True, env=self.env(),
                              stdin=subprocess.DEVNULL)
        if check and proc.returncode:
            raise AssertionError('podman %s failed (%d):\n%s'
                                 % (' '.join(args), proc.returncode, proc.stderr))
        return proc


REGISTRY_CONFIG = '''\
version: 0.1
log:
  level: warn
  accesslog: {disabled: true}
storage:
  %(storage)s
  delete: {enabled: true}
  cache: {blobdescriptor: inmemory}
http:
  addr: 127.0.0.1:%(port)d
  secret: test-only
'''


class Registry(Peer):
    """Debian's docker-registry (Distribution 2.8) over plain HTTP by default.

    The package's own config enables htpasswd with a directory as the path,
    so we always write our own.  `url` is '127.0.0.1:PORT' (no scheme), as
    used in image references; `base_url` adds the scheme.

    Options (each writes its own config.yml section):
    - tls=True: HTTPS with a self-signed cert for 127.0.0.1/localhost made by
      openssl; `ca_file` is its PEM, to trust it.
    - htpasswd={'user': 'pass'}: Basic auth (bcrypt file from `htpasswd -Bbn`).
    - token=TokenServer (started): Bearer token auth verified against the
      issuer's certificate; iss/aud must match its issuer/service.
    """

    name = 'registry'
    start_timeout = 15.0

    def __init__(self, storage='filesystem', tls=False, htpasswd=None, token=None,
                 access_log=False):
        super().__init__()
        self.access_log = access_log
        if htpasswd and token:
            raise ValueError('choose htpasswd or token auth, not both')
        self.storage = storage
        self.tls = tls
        self.htpasswd = dict(htpasswd) if htpasswd else None
        self.token = token
        self.port = None
        self.url = None
        self.ca_file = None

    @property
    def scheme(self):
        return 'https' if self.tls else 'http'

    @property
    def base_url(self):
        return '%s://%s' % (self.scheme, self.url)

    def prepare(self):
        self.port = free_port()
        self.url = '127.0.0.1:%d' % self.port
        if self.storage == 'inmemory':
            storage = 'inmemory: {}'
        else:
            data = os.path.join(self.dir, 'data')
            os.makedirs(data)
            storage = 'filesystem: {rootdirectory: %s}' % data
        config = REGISTRY_CONFIG % {'storage': storage, 'port': self.port}
        if self.access_log:         # every request in the log, for uploads()
            config = config.replace('  accesslog: {disabled: true}\n',
                                    '  accesslog: {disabled: false}\n')
        if self.tls:
            if self.ca_file is None or not os.path.exists(self.ca_file):
                self._make_cert()
            config += '  tls: {certificate: %s, key: %s}\n' % (self.ca_file, self._key_file)
        if self.htpasswd:
            path = os.path.join(self.dir, 'htpasswd')
            with open(path, 'w') as f:
                for user, password in self.htpasswd.items():
                    f.write(subprocess.run(['htpasswd', '-Bbn', user, password], check=True,
                                           capture_output=True, text=True).stdout.strip()
                            + '\n')
            config += 'auth:\n  htpasswd: {realm: test-realm, path: %s}\n' % path
        if self.token is not None:
            config += ('auth:\n  token: {realm: "%s", service: %s, issuer: %s, '
                       'rootcertbundle: %s}\n' % (self.token.realm, self.token.service,
                                                  self.token.issuer, self.token.cert_path))
        self.config_path = os.path.join(self.dir, 'config.yml')
        with open(self.config_path, 'w') as f:
            f.write(config)

    def _make_cert(self):
        # Kept in the registry's own dir, so a restart on a new port reuses nothing.
        self._key_file = os.path.join(self.dir, 'key.pem')
        self.ca_file = os.path.join(self.dir, 'cert.pem')
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
                        '-days', '30', '-keyout', self._key_file, '-out', self.ca_file,
                        '-subj', '/CN=127.0.0.1',
                        '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
                       check=True, capture_output=True, stdin=subprocess.DEVNULL)

    def command(self):
        return ['docker-registry', 'serve', self.config_path]

    def uploads(self, repository):
        """{digest: how many uploads of it completed} in repository, from the access
        log (access_log=True): the final PUT of an upload session names the digest."""
        pattern = re.compile(r'"PUT /v2/%s/blobs/uploads/[^" ]*[?&]digest=([^&" ]+)[^"]*" 201 '
                             % re.escape(repository))
        counts = {}
        with open(self.log_path, errors='replace') as f:
            for line in f:
                match = pattern.search(line)
                if match:
                    digest = urllib.parse.unquote(match.group(1))
                    counts[digest] = counts.get(digest, 0) + 1
        return counts

    def ready(self):
        context = None
        if self.tls:
            context = ssl.create_default_context(cafile=self.ca_file)
        return http_ok('%s/v2/' % self.base_url, context=context)

    def start(self):
        # free_port() can race with another process; retry on a new port.
        for attempt in range(3):
            try:
                return super().start()
            except RuntimeError:
                if attempt == 2:
                    raise


class RedisServer(Peer):
    """Debian's redis-server on a free 127.0.0.1 port, persistence off (no RDB
    snapshots, no AOF), so it writes nothing outside its temp dir.  `url` is
    'redis://127.0.0.1:PORT/0'; restart() keeps the port (a broker that comes back)."""

    name = 'redis'
    start_timeout = 15.0

    def __init__(self):
        super().__init__()
        self.port = None

    @property
    def url(self):
        return 'redis://127.0.0.1:%d/0' % self.port

    def prepare(self):
        if self.port is None:
            self.port = free_port()

    def command(self):
        return ['redis-server', '--port', str(self.port), '--bind', '127.0.0.1',
                '--save', '', '--appendonly', 'no', '--dir', self.dir,
                '--protected-mode', 'no']

    def ready(self):
        try:
            with socket.create_connection(('127.0.0.1', self.port), timeout=1.0) as s:
                s.sendall(b'PING\r\n')
                return s.recv(16).startswith(b'+PONG')
        except OSError:
            return False

    def cli(self, *args):
        """redis-cli against this server; its output, stripped."""
        return subprocess.run(['redis-cli', '-p', str(self.port)] + [str(a) for a in args],
                              check=True, capture_output=True, text=True).stdout.strip()

    def flush(self):
        self.cli('FLUSHALL')
