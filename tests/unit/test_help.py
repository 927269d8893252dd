"""`process --help` and `search --help` list what the declarations accept: every filter
with its options, every input and output scheme with its URI options."""
from occystrap.filters import FILTERS
from occystrap.transports import classes
from tests.cli import occystrap


def section(text, title, end=None):
    """The words of a help section from title up to end (or the end of the text)."""
    body = text.split(title, 1)[1]
    if end:
        body = body.split(end, 1)[0]
    return " ".join(body.split())


def assert_lists(body, declared):
    for name, cls in declared.items():
        assert name in body, (name, body)
        for option in list(cls.OPTIONS) + list(cls.OPTION_ALIASES):
            assert option in body, (name, option, body)


def test_process_help_lists_filters_and_uri_options():
    text = occystrap("process", "--help", check=True).stdout
    filters = section(text, "Filters (", "Inputs (")
    inputs = section(text, "Inputs (SOURCE)", "Outputs (")
    outputs = section(text, "Outputs (DESTINATION)")
    assert_lists(filters, FILTERS)
    assert_lists(inputs, {scheme + "://": cls for scheme, cls in classes("input").items()})
    assert_lists(outputs, {scheme + "://": cls for scheme, cls in classes("output").items()})
    # what the declarations say, spot-checked by hand: a sink-only scheme and option
    assert "oci://" in outputs and "oci://" not in inputs
    assert "unique_names" in outputs and "unique_names" not in inputs
    assert "exclude pattern" in filters and "file://" in inputs


def test_search_help_says_which_sources_it_takes():
    text = occystrap("search", "--help", check=True).stdout
    sources = section(text, "Sources (SOURCE)")
    assert_lists(sources, {scheme + "://": cls for scheme, cls in classes("input").items()})
    assert "registry://" in sources and "mounts://" not in sources
