from tests.fakes.harness import fixtures
from tests.fakes.x import XFake

server, fake = fixtures(XFake)
