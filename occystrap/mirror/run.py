"""Running a sync: every job (one image) copied with api.copy, -J images at once, and the
report (one record per image, a summary).

An unfiltered copy is byte-exact, so the digest it would write is known before any
blob moves (imageset.planned_digest): when the destination already names it (one HEAD,
or one look at index.json), the image is `unchanged` and nothing is read.  The first
failure stops new images from starting unless keep_going; those in flight finish.
"""
import dataclasses
import logging
import threading
import time

from .. import api
from ..cache import CopyCache, open_cache
from ..errors import OccystrapError, OutputError
from ..filters import build_filter
from ..imageset import planned_digest, planned_provenance
from ..model import format_size
from ..progress import Progress
from ..transports import checked, open_sink, open_source
from ..transports.registry.client import ClientPool
from ..uri import parse_uri
from .resolve import resolve
from .spec import load_spec, parse_spec

LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class ImageRecord:
    """What happened to one image (the `-O json` record)."""
    source: str
    destination: str
    digest: str = None
    status: str = "failed"          # copied | unchanged | failed (dry run: would copy)
    layers_uploaded: int = 0
    layers_reused: int = 0
    bytes_uploaded: int = 0
    seconds: float = 0.0
    error: str = None
    worker: str = None              # the Celery worker that ran it (sync --broker)

    def as_dict(self):
        record = dataclasses.asdict(self)
        for optional in ("error", "worker"):
            if record[optional] is None:
                del record[optional]
        record["seconds"] = round(record["seconds"], 3)
        return record


@dataclasses.dataclass
class SyncReport:
    images: list                    # ImageRecords, in job order
    seconds: float
    not_started: int = 0            # jobs a failure kept from starting

    @property
    def failed(self):
        return any(record.status == "failed" for record in self.images)

    @property
    def summary(self):
        counts = {status: sum(1 for r in self.images if r.status == status)
                  for status in ("copied", "unchanged", "failed", "would copy")}
        return {"images": len(self.images), **{k: v for k, v in counts.items()
                                               if k != "would copy" or v},
                "not_started": self.not_started,
                "layers_uploaded": sum(r.layers_uploaded for r in self.images),
                "layers_reused": sum(r.layers_reused for r in self.images),
                "bytes_uploaded": sum(r.bytes_uploaded for r in self.images),
                "seconds": round(self.seconds, 3)}

    def as_dict(self):
        return {"images": [r.as_dict() for r in self.images], "summary": self.summary}


def entries_of(spec, name="spec"):
    """The Entries of spec: a path to a YAML file, an already loaded document, or a
    list of Entries."""
    if isinstance(spec, str):
        return load_spec(spec)
    if isinstance(spec, dict):
        return parse_spec(spec, name)
    return list(spec)


def sync(spec, options=None, *, keep_going=False, dry_run=False, on_image=None,
         on_jobs=None):
    """Mirror what spec names; return a SyncReport.

    options are the global CLI options (image_parallel, parallel, insecure,
    credentials, retries, rate_limit, layer_cache, verify); on_image(record) is
    called as each image ends (the CLI prints a line), on_jobs(count) once the set is
    resolved (the CLI's bar learns its total).  Bad input in the spec raises
    SpecError before anything is copied; a failed image is a record, not an error.
    """
    options = dict(options or {})
    clients = options["clients"] = ClientPool(options.get("rate_limit"))
    started = time.monotonic()
    try:
        jobs, unresolved = resolve_jobs(spec, options, keep_going)
    except BaseException:
        clients.close()
        raise
    if on_jobs is not None:
        on_jobs(len(jobs) + len(unresolved))
    stop = threading.Event()        # no new image starts
    if unresolved and not keep_going:
        stop.set()
    layer_cache = open_cache(options.get("layer_cache"))
    shared = api.Shared()       # a blob several images share goes up once
    records = [None] * len(jobs)

    def work(position, cancel):
        """One image; cancel (the pool's stop, set on a signal) stops its copy at the
        next chunk."""
        if stop.is_set():
            return
        job = jobs[position]
        LOG.info("Start %s -> %s", job.source, job.destination)
        record = run_job(job, options, layer_cache, dry_run, shared, cancel)
        records[position] = record
        if record.status == "failed" and not keep_going:
            stop.set()
        if on_image is not None:
            on_image(record)

    try:
        api.in_pool(max(1, int(options.get("image_parallel") or 1)), work,
                    list(range(len(jobs))), name="occystrap-image")
    except BaseException:
        stop.set()
        raise
    finally:
        if layer_cache is not None:
            layer_cache.close()
        clients.close()
    for record in unresolved:
        if on_image is not None:
            on_image(record)
    done = unresolved + [record for record in records if record is not None]
    return SyncReport(done, time.monotonic() - started,
                      len(jobs) - (len(done) - len(unresolved)))


def resolve_jobs(spec, options, keep_going=False):
    """(jobs, unresolved): the images spec names, and a failed ImageRecord for each
    entry that could not be listed (after the first, none more unless keep_going)."""
    jobs, unresolved = [], []
    for entry in entries_of(spec):
        try:
            jobs.extend(resolve(entry, options))
        except OccystrapError as exc:   # a repository missing, a listing refused
            unresolved.append(ImageRecord(entry.source, entry.destination, error=str(exc)))
            if not keep_going:
                break
    return jobs, unresolved


def job_options(options, entry):
    """The options one entry's images run with: its platforms and compression over
    the global ones."""
    merged = dict(options)
    if entry.platforms:
        merged["platform"] = entry.platforms
    if entry.compression:
        merged["compression"] = entry.compression
    return merged


def run_job(job, options, layer_cache=None, dry_run=False, shared=None, cancel=None):
    """Copy one image (or find it unchanged); every failure becomes the record's
    error, so one broken image never stops the report."""
    started = time.monotonic()
    record = ImageRecord(job.source, job.destination)
    try:
        _copy_job(job, job_options(options, job.entry), layer_cache, dry_run, record,
                  shared, cancel)
    except (OccystrapError, api.CopyStopped) as exc:
        record.status, record.error = "failed", str(exc)
    except OSError as exc:
        record.status = "failed"
        record.error = "%s%s" % (exc.strerror or exc, " (%s)" % exc.filename
                                 if exc.filename else "")
    record.seconds = time.monotonic() - started
    return record


def _copy_job(job, options, layer_cache, dry_run, record, shared, cancel):
    filters = [build_filter(spec) for spec in job.entry.filters]
    source_uri = checked(parse_uri(job.source), "input")
    sink_uri = checked(parse_uri(job.destination), "output")
    sink = open_sink(sink_uri, options)
    try:
        with open_source(source_uri, options) as source:
            planned = planned_digest(source, sink, filters)
            if planned is not None and sink.current_digest() == planned:
                record.status, record.digest = "unchanged", planned
                return
            made = _made_before(source, sink, filters)
            if made is not None:
                record.status, record.digest = "unchanged", made
                return
            if dry_run:
                record.status, record.digest = "would copy", planned
                return
            verify = options.get("verify", True) or options.get("verify_full", False)
            report = api.copy(source, sink, filters, parallel=options.get("parallel", 4),
                              verify=verify, verify_full=options.get("verify_full", False),
                              layer_cache=layer_cache if CopyCache.supports(sink) else None,
                              progress=Progress(quiet=True),
                              referrers=options.get("referrers"), shared=shared,
                              cancel=cancel, sizes=False)
            sink = None                 # copy() closed it
    finally:
        if sink is not None:
            sink.close()
    if report.verify_errors:
        raise OutputError("verification failed: %s" % "; ".join(report.verify_errors))
    record.status, record.digest = "copied", report.digest
    record.layers_reused = report.reused
    record.layers_uploaded = report.layers - report.reused
    record.bytes_uploaded = report.uploaded_bytes


def _made_before(source, sink, filters):
    """The digest at the destination when a rewrite of this very source with these
    filters is already there (its provenance annotations say so), else None."""
    wanted = planned_provenance(source, sink, filters)
    if not wanted:
        return None
    current = sink.current_annotations()
    if current is None:
        return None
    digest, annotations = current
    return digest if all(annotations.get(k) == v for k, v in wanted.items()) else None


def describe(record):
    """The human line of one image (stderr)."""
    where = "%s -> %s" % (record.source, record.destination)
    worker = " on %s" % record.worker if record.worker else ""
    if record.status == "failed":
        return "failed     %s%s: %s" % (where, worker, record.error)
    digest = " %s" % record.digest if record.digest else ""
    if record.status == "copied":
        return "copied     %s%s (%d layers uploaded, %d reused, %s, %.1fs%s)" % (
            where, digest, record.layers_uploaded, record.layers_reused,
            format_size(record.bytes_uploaded), record.seconds, worker)
    return "%-10s %s%s%s" % (record.status, where, digest, worker)


def summary_line(report):
    summary = report.summary
    parts = ["%d images" % summary["images"]]
    parts += ["%d %s" % (summary[k], k) for k in ("copied", "unchanged", "would copy",
                                                   "failed") if summary.get(k)]
    if report.not_started:
        parts.append("%d not started" % report.not_started)
    parts.append("%s uploaded" % format_size(summary["bytes_uploaded"]))
    parts.append("%.1fs" % report.seconds)
    return "Sync: " + ", ".join(parts)
