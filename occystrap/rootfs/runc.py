"""The runc bundle config.json of an oci:// output (occystrap 0.4.17 spec B.7).

The base is the template `runc spec` prints (ociVersion 1.0.2-dev).  From the image
config 0.4.17 took process.args (Entrypoint + Cmd) and process.cwd (WorkingDir or /),
and set process.terminal false and hostname "occystrap".  Fixed here:

* the image's Env is copied into process.env (image values win; the template's PATH
  and TERM=xterm are kept when the image does not set them), 0.4.17 dropped it;
* a numeric User ("uid" or "uid:gid") sets process.user; user names cannot be mapped
  without the image's /etc/passwd and leave the template's 0:0.
"""
import copy
import logging
import os

from ..atomicfile import dump_json, write_atomic
from ..errors import InputError, OutputError
from ..jsonparse import parse_json

LOG = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_ENV = ("PATH=" + DEFAULT_PATH, "TERM=xterm")
DEFAULT_ARGS = ["sh"]
CAPABILITIES = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
NOSUID_NOEXEC_NODEV = ["nosuid", "noexec", "nodev"]

TEMPLATE = {
    "ociVersion": "1.0.2-dev",
    "process": {
        "terminal": False,
        "user": {"uid": 0, "gid": 0},
        "args": list(DEFAULT_ARGS),
        "env": list(DEFAULT_ENV),
        "cwd": "/",
        "capabilities": {
            "bounding": list(CAPABILITIES),
            "effective": list(CAPABILITIES),
            "permitted": list(CAPABILITIES),
            "ambient": list(CAPABILITIES),
        },
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "occystrap",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": NOSUID_NOEXEC_NODEV + ["mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": list(NOSUID_NOEXEC_NODEV)},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": NOSUID_NOEXEC_NODEV + ["ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": NOSUID_NOEXEC_NODEV + ["relatime", "ro"]},
    ],
    "linux": {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": [{"type": kind} for kind in
                       ("pid", "network", "ipc", "uts", "mount", "cgroup")],
        "maskedPaths": [
            "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
            "/proc/scsi",
        ],
        "readonlyPaths": [
            "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
        ],
    },
}


def runc_config(image_config):
    """The runc config.json content (a dict) for an image config dict."""
    config = copy.deepcopy(TEMPLATE)
    settings = (image_config or {}).get("config") or {}
    process = config["process"]
    args = _as_list(settings.get("Entrypoint")) + _as_list(settings.get("Cmd"))
    process["args"] = args or list(DEFAULT_ARGS)
    process["cwd"] = settings.get("WorkingDir") or "/"
    process["env"] = merge_env(settings.get("Env"))
    user = parse_user(settings.get("User"))
    if user is not None:
        process["user"] = user
    return config


def _as_list(value):
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value]


def merge_env(image_env):
    """Image Env entries (last value of a name wins, first position kept) + defaults.

    PATH is put first and TERM=xterm last when the image sets neither.  Entries
    without '=' are not valid process environment and are dropped.
    """
    values = {}
    for entry in image_env or []:
        if "=" not in entry:
            LOG.debug("ignoring environment entry without '=': %r", entry)
            continue
        name, _, value = entry.partition("=")
        values[name] = value
    env = ["%s=%s" % item for item in values.items()]
    if "PATH" not in values:
        env.insert(0, DEFAULT_ENV[0])
    if "TERM" not in values:
        env.append(DEFAULT_ENV[1])
    return env


def parse_user(user):
    """{"uid", "gid"} for a numeric "uid" or "uid:gid" User, else None."""
    if not user:
        return None
    uid, _, gid = str(user).partition(":")
    if not uid.isdigit() or (gid and not gid.isdigit()):
        LOG.warning("image user %r is not numeric; running as 0:0", user)
        return None
    return {"uid": int(uid), "gid": int(gid) if gid else 0}


def write_bundle_files(bundle_dir, config_bytes):
    """Write config.json (runc spec) and container-config.json (the image config).

    Each file is written under a temporary name and renamed into place.
    """
    if isinstance(config_bytes, str):
        config_bytes = config_bytes.encode("utf-8")
    try:
        image_config = parse_json(config_bytes)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError("image config is not valid JSON: %s" % exc) from None
    if not isinstance(image_config, dict):
        raise InputError("image config is not a JSON object")
    _write_file(os.path.join(bundle_dir, "config.json"), dump_json(runc_config(image_config)))
    _write_file(os.path.join(bundle_dir, "container-config.json"), bytes(config_bytes))


def _write_file(path, data):
    """write_atomic, with a failure reported as an OutputError naming the file."""
    try:
        write_atomic(path, data)
    except OSError as exc:
        raise OutputError("cannot write %s: %s" % (path, exc.strerror)) from None
