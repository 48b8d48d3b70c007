from tests.fakes.harness import fixtures
from tests.fakes.intercom import IntercomFake

server, fake = fixtures(IntercomFake)
