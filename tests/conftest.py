"""Test-wide fixtures: the twin selector (yarl/multidict style) and a stderr guard."""
import pytest
from hypothesis import HealthCheck, settings

from occystrap import _native
from tests.twins import Twin

# Our fixtures (impl, twins, the stderr guard) hold no per-example state.
settings.register_profile("occystrap", deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.load_profile("occystrap")


def pytest_addoption(parser):
    parser.addoption("--no-native", action="store_true",
                     help="test only the pure-Python twins (for builds without extensions)")


def _twins(config):
    names = ["python"]
    if _native.IMPLEMENTATION == "cython" and not config.getoption("--no-native"):
        names.insert(0, "cython")
    return names


def pytest_generate_tests(metafunc):
    if "impl" in metafunc.fixturenames:
        metafunc.parametrize("impl", _twins(metafunc.config), indirect=True)


@pytest.fixture
def impl(request):
    return Twin(request.param)


@pytest.fixture
def twins(request):
    """Every available implementation, for byte-for-byte comparisons."""
    return [Twin(name) for name in _twins(request.config)]


@pytest.fixture(autouse=True)
def _no_ignored_exceptions(capfd):
    yield
    _out, err = capfd.readouterr()
    assert "Exception ignored" not in err, err
