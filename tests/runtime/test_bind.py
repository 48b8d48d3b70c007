"""``sluice serve`` listens with one socket per HTTP worker on Linux (SO_REUSEPORT), so the
kernel spreads connections over the workers; a port already held is still refused."""

from __future__ import annotations

import socket
import sys

import pytest

from sluiceway.runtime.server import _bind

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT groups are Linux's")


def _close(socks):
    for s in socks:
        s.close()


def test_one_worker_gets_one_plain_socket():
    socks = _bind("127.0.0.1", 0, 1)
    try:
        assert len(socks) == 1 and socks[0].get_inheritable()
        assert socks[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0
    finally:
        _close(socks)


@linux_only
def test_each_worker_gets_its_own_socket_and_connections_are_spread():
    socks = _bind("127.0.0.1", 0, 2)
    clients = []
    try:
        assert len(socks) == 2
        port = socks[0].getsockname()[1]
        assert socks[1].getsockname()[1] == port
        assert all(s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1 and s.get_inheritable() for s in socks)
        for _ in range(64):
            c = socket.create_connection(("127.0.0.1", port))
            clients.append(c)
        accepted = []
        for s in socks:
            s.setblocking(False)
            n = 0
            while True:
                try:
                    conn, _ = s.accept()
                except BlockingIOError:
                    break
                conn.close()
                n += 1
            accepted.append(n)
        # 64 connections hashed over two sockets: all on one has a chance of 2 in 2**64.
        assert sum(accepted) == 64 and min(accepted) > 0
    finally:
        _close(clients)
        _close(socks)


@linux_only
@pytest.mark.parametrize("workers", [1, 2])
def test_a_port_held_by_another_listener_is_refused(workers):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        with pytest.raises(OSError):
            _close(_bind("127.0.0.1", holder.getsockname()[1], workers))
    finally:
        holder.close()


@linux_only
def test_a_second_gateway_cannot_join_the_first_ones_group():
    first = _bind("127.0.0.1", 0, 2)
    try:
        with pytest.raises(OSError):
            _close(_bind("127.0.0.1", first[0].getsockname()[1], 2))
    finally:
        _close(first)
