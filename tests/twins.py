"""The modules of one build of the native core, for tests and the fuzzer alike."""
import importlib


class Twin:
    """The native modules of one implementation: .tarstream, .rewrite, .globset."""

    def __init__(self, name):
        self.name = name
        suffix = "" if name == "cython" else "_py"
        for module in ("tarstream", "rewrite", "globset"):
            setattr(self, module, importlib.import_module("occystrap._native." + module + suffix))
