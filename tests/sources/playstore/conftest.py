import pytest

from sluiceway.sources.playstore.auth import forget_tokens
from tests.fakes.harness import fixtures
from tests.fakes.playstore import PlayStoreFake

server, _fake = fixtures(PlayStoreFake)


@pytest.fixture
def fake(_fake):
    forget_tokens()
    _fake.static_tokens.add("static-token")
    yield _fake
    forget_tokens()
