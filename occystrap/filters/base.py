"""Filter base class: filters wrap each layer stream and may rewrite the config.

A filter contributes one stage per layer (an object with feed(bytes)->bytes and
close()->bytes).  Content filters return a rewriting TarRewriter; observers (search,
inspect) return an Observer that parses and passes the bytes through unchanged.
"""
from .._native import rewrite
from ..uri import check_options


class Observer:
    """A pass-through stage that parses the tar stream and keeps its members."""

    def __init__(self):
        self.scanner = rewrite.TarRewriter(rewrite=False, collect=True)
        self.bytes = 0

    @property
    def members(self):
        return self.scanner.members

    def feed(self, data):
        self.scanner.feed(data)
        self.bytes += len(data)
        return data

    def close(self):
        self.scanner.close()
        return b""


class Filter:
    """Base class; `spec` is the parsed FilterSpec."""
    name = ""
    OPTIONS = {}                    # the keys accepted: {name: value type} (uri.py)
    OPTION_ALIASES = {}             # other spellings of them: {alias: name}
    changes_content = False
    reads_any_blob = False          # a blob of no known compression is read as stored
    after_rewrite = False           # set by the copier: a content filter runs before this
    local_path = None               # a local file the filter writes (inspect), if any

    def __init__(self, spec):
        self.spec = spec
        # from the text as typed: 0.4.17's coercion made `ts=0` False and `pattern=1` True
        self.values = check_options(spec.raw, self.OPTIONS, self.OPTION_ALIASES,
                                    where="filter %s" % self.name)
        self.stages = {}            # layer index -> stage, for observers' reports

    @property
    def cache_token(self):
        """What identifies this filter's effect (feeds the layer-cache filters hash)."""
        return self.spec.text

    @property
    def portable_spec(self):
        """The spec as another machine must read it to do the same (a worker): every
        default taken from this machine's environment written out."""
        return self.spec.text

    def applies_to(self, ref):
        """Whether the filter runs on this layer (a layer no filter runs on is copied
        as it is, blob and digests included)."""
        return True

    def stage(self, ref):
        """The per-layer stage for LayerRef ref."""
        raise NotImplementedError

    def edit_config(self, config):
        """Change the image config (a dict) in place, if the filter does."""

    def finish(self, source, results, out):
        """Called once all layers are written (results in manifest order)."""

    def layer_name(self, ref, results):
        """The layer's element name at this point of the chain: the source's name, or
        the rewritten diff_id's hex after a content filter (as 0.4.17 renamed them)."""
        if self.after_rewrite and results:
            return results[ref.index].diff_id.split(":", 1)[1]
        return ref.name

    def option(self, name, default=None):
        """The typed value of option name (declared in OPTIONS), else default."""
        return self.values.get(name, default)
