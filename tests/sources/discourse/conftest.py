from tests.fakes.harness import fixtures
from tests.fakes.discourse import DiscourseFake

server, fake = fixtures(DiscourseFake)
