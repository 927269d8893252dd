"""`occystrap proxy`: run a filtering registry proxy (0.4.17 A.2, B.13)."""
import click

from . import cli
from .options import PARALLEL


@cli.command(help="Run a filtering registry proxy.\n\n"
                  "Clients push to it (docker push, skopeo copy); each image runs through "
                  "the filters and is pushed to DOWNSTREAM.  With --upstream it is also a "
                  "pull-through cache: images missing downstream are fetched from the "
                  "upstream, filtered, stored downstream and served.")
@click.option("-l", "--listen", default="127.0.0.1:5050", show_default=True,
              help="HOST[:PORT] to listen on (plain HTTP; port 0 picks a free one).")
@click.option("-d", "--downstream", required=True,
              help="Registry to push filtered images to: HOST[:PORT][/PREFIX].")
@click.option("-f", "--filter", "filters", multiple=True,
              help="Filter spec name[:k=v,...]; repeat to chain, applied in order.")
@click.option("-c", "--concurrency", type=PARALLEL, default=4, show_default=True,
              help="Images processed at once (pushes and pulls).")
@click.option("-u", "--upstream",
              help="Enable pull-through from [http(s)://][USER:PASS@]HOST[:PORT]; a "
                   "scheme sets the upstream's TLS whatever --insecure says.")
@click.option("--upstream-username", envvar="OCCYSTRAP_UPSTREAM_USERNAME",
              help="Upstream username (overrides the one in --upstream).")
@click.option("--upstream-password", envvar="OCCYSTRAP_UPSTREAM_PASSWORD",
              help="Upstream password (overrides the one in --upstream).")
@click.option("--upstream-insecure", is_flag=True,
              help="Plain HTTP to the upstream (default: the global --insecure).")
@click.option("--upstream-ca-file", type=click.Path(dir_okay=False),
              envvar="OCCYSTRAP_UPSTREAM_CA_FILE",
              help="PEM file of CA certificates to trust for the upstream (default: "
                   "the global --ca-file).")
@click.pass_obj
def proxy(options, listen, downstream, filters, concurrency, upstream, upstream_username,
          upstream_password, upstream_insecure, upstream_ca_file):
    from ..proxy import Proxy
    return Proxy(downstream, filters, options, listen=listen, concurrency=concurrency,
                 upstream=upstream, upstream_username=upstream_username,
                 upstream_password=upstream_password, upstream_insecure=upstream_insecure,
                 upstream_ca_file=upstream_ca_file).run()
