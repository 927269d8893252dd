"""An ephemeral self-signed certificate for the dockerpush:// embedded registry.

Made with the `openssl` CLI (as 0.4.17 did, spec B.14), valid one day, CN=127.0.0.1
with SAN IP:127.0.0.1.  The key is ECDSA P-256, not 0.4.17's RSA-2048: generating it
takes about 20 ms instead of 0.25-0.5 s on every dockerpush:// run, and Go's TLS
(dockerd, podman) and Python's ssl serve and accept it.  Nobody verifies it: dockerd
treats registries on 127.0.0.0/8 as insecure and accepts any certificate, and podman
is told `tlsVerify=false` with the push.  It is HTTPS rather than plain HTTP because
dockerd tries HTTPS first and podman, without an insecure entry in registries.conf,
insists on it.
"""
import os
import shutil
import subprocess
import tempfile

from ...errors import InputError

OPENSSL_TIMEOUT = 60            # key generation takes about 20 ms here


def make_certificate(temp_dir=None):
    """Write key.pem and cert.pem into a new private directory; return the directory.

    The caller removes the directory (shutil.rmtree) once the server has loaded them.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        raise InputError("dockerpush:// needs the openssl command to make its temporary "
                         "TLS certificate; install it (apt-get install openssl, "
                         "dnf install openssl, brew install openssl)")
    try:
        directory = tempfile.mkdtemp(prefix=".occystrap-tls-", dir=temp_dir)
    except OSError as exc:
        raise InputError("cannot create a temporary directory in %s: %s"
                         % (temp_dir or tempfile.gettempdir(), exc.strerror)) from None
    command = [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
               "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
               "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
               "-keyout", os.path.join(directory, "key.pem"),
               "-out", os.path.join(directory, "cert.pem")]
    try:
        proc = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=OPENSSL_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(directory, ignore_errors=True)
        raise InputError("openssl could not make a TLS certificate: %s" % exc) from None
    except BaseException:               # Ctrl-C: never leave a private key behind
        shutil.rmtree(directory, ignore_errors=True)
        raise
    if proc.returncode != 0:
        shutil.rmtree(directory, ignore_errors=True)
        detail = " ".join(proc.stderr.split())[-300:] or "exit %d" % proc.returncode
        raise InputError("openssl could not make a TLS certificate: %s" % detail)
    return directory
