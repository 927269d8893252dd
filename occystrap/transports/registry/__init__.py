"""registry:// (and the 0.4.17 alias quay.io hosts): OCI distribution API, in and out."""
from .. import register
from .sink import RegistrySink
from .source import RegistrySource

register("registry", source=RegistrySource, sink=RegistrySink)
