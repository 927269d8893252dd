"""Layers into a root filesystem: expand.py applies layers (whiteouts, path safety, the
overlay form of a layer), background.py overlaps that with the copy, runc.py writes the
config.json of an oci:// bundle.  Sinks (dir://, oci://, mounts://) build on these."""
