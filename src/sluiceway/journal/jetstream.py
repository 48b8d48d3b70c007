"""The journal on a NATS JetStream server: the contract of ``base``, for gateways that keep
their undelivered records on a NATS server instead of their own disk.

Layout on the server
--------------------
* **One stream per partition**, named ``{stream_prefix}_{instance}_{partition}`` (for example
  ``SLUICE_3f9a01c2_w0``), holding the one subject ``{subject_prefix}.{instance}.{partition}``.
  ``instance`` is the data dir's instance id (``runtime/instance.py``), so gateways sharing a
  server never write into one stream. File storage, ``num_replicas`` as configured, limits
  retention, ``discard: new`` and ``max_bytes`` as the partition's limit (the server refuses
  an append past it), ``allow_direct`` (reads are direct gets: no consumer state to keep).
* **An entry's offset is its stream sequence**: 1, 2, … and never reused, as the contract asks.
* **Cursors** live in the key-value bucket ``{stream_prefix}_{instance}_cursors``, one key per
  ``{partition}.{consumer}``, its value the cursor as JSON (``{"acked": n, "pending": [a, b]}``),
  written with the server's acknowledgement before ``save_cursor`` returns.

Durability
----------
``append`` returns only when the server acknowledged every item (a PubAck, which it sends once
the message is in its stream store). Whether that store has reached the disk is the server's
setting: JetStream syncs its files every ``sync_interval`` (2 minutes by default), so for the
gateway's promise — accepted means on disk — run the server with ``sync_interval: always``, or
with replicas on separate machines (docs/operations.md). The NATS protocol does not tell a
client that setting; the server's HTTP monitoring does: given ``monitor_url``, a process that
writes or delivers reads ``/varz`` as it opens and refuses a server whose JetStream does not
sync every write (``sync_problem``), unless the streams have 3 replicas or more.

Appends are committed as JetStream **atomic batches** (server 2.12 or later; the streams have
``allow_atomic``): the messages of a batch carry ``Nats-Batch-Id`` and ``Nats-Batch-Sequence``,
the last one ``Nats-Batch-Commit``, and the server stores all of them, with consecutive
sequences, or none, and acknowledges the commit once (far faster than messages acknowledged
one by one, each synced). Like the embedded journal's group commit,
the appends queued while a batch is in flight go together into the next one, whole appends up
to ``ATOMIC_MAX`` (1,000, the server's limit) messages; an append of more is sent alone in
several batches, one after the other. Batches of at least half that size may be committed
beside others, up to ``IN_FLIGHT`` at once, and may then take their sequences in any order; so
the span an append of more than 1,000 items returns holds all of them, and maybe records of
other appends committed between its batches. So an append of up to 1,000 items is stored whole or not
at all, and gets consecutive offsets. A larger one that fails midway (the connection drops, the
stream reaches ``max_bytes``) leaves its first batches stored, and they are delivered although
the caller answered 503: the one case where a refused request can leave records behind, and a
client's retry can store them twice. An append while disconnected fails at once (the client
would otherwise keep the messages and send them on reconnecting), and one that would pass
``max_bytes`` raises ``JournalFull``; neither stores anything.

Reading, waiting, reclaiming
----------------------------
``read`` is one batched direct get (``$JS.API.DIRECT.GET.<stream>`` with ``seq``, ``batch``
and ``max_bytes``), answered by the messages and an end-of-batch status. ``wait`` polls the
stream's state every ``poll_interval``. ``save_cursor`` writes the cursor, then, if every
registered consumer has acked past the stream's first sequence, purges the stream below the
lowest ``acked`` (at most once every ``RECLAIM_EVERY`` seconds): that is when space is freed.

A gateway delivers the partitions of its own instance (the streams with its prefix); a stopped
gateway's records wait in its streams until a gateway starts again with the same instance id
(``other_instances`` lists such streams for ``sluice journal status``).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from sluiceway.errors import JournalCorrupt, JournalError, JournalFull
from sluiceway.journal.base import CONSUMER_RE, Cursor, Entry, Journal, Partition, PartitionStats
from sluiceway.record import valid_name
from sluiceway.runtime.instance import INSTANCE_RE
from sluiceway.telemetry.logging import get_logger

if TYPE_CHECKING:
    import nats.aio.client
    import nats.js

log = get_logger("sluiceway.journal")
FULL_RETRY_AFTER = 1.0
RECLAIM_EVERY = 1.0  # seconds between purges of one stream
STATS_EVERY = 1.0  # seconds between reads of the own stream's state (``full()`` reads it)
ATOMIC_MAX = 1000  # messages per atomic batch: the server's limit
IN_FLIGHT = 4  # atomic batches of one partition committed at once (the server allows 50 per stream)
BATCH_ID, BATCH_SEQ, BATCH_COMMIT = "Nats-Batch-Id", "Nats-Batch-Sequence", "Nats-Batch-Commit"


def cursor_key(partition: str, consumer: str) -> str:
    """A cursor's key in the bucket."""
    return f"{partition}.{consumer}"


class JetStreamPartition(Partition):
    def __init__(self, journal: "JetStreamJournal", name: str) -> None:
        self.name = name
        self._j = journal
        self.stream = journal.stream_name(name)
        self.subject = journal.subject_name(name)
        self._stats = PartitionStats(name, 0, 0, 0)
        self._last_purge = 0.0
        self._later: asyncio.Task[None] | None = None
        self._queue: list[tuple[Sequence[bytes], asyncio.Future[tuple[int, int]], int]] = []
        self._queued = 0  # bytes queued, not yet committed
        self._batches: set[asyncio.Task[None]] = set()  # atomic batches being committed
        self._closed = False

    def __repr__(self) -> str:
        return f"JetStreamPartition({self.stream!r})"

    # -- state --------------------------------------------------------------------------
    def stats(self) -> PartitionStats:
        return self._stats

    async def _refresh_stats(self) -> PartitionStats:
        try:
            info = await self._j.js.stream_info(self.stream)
        except Exception as e:  # noqa: BLE001 - every failure of the server is the journal's
            raise self._j.error(f"cannot read the state of stream {self.stream}", e) from e
        s = info.state
        first = s.first_seq if s.messages else 0
        self._stats = PartitionStats(self.name, first, s.last_seq, s.bytes)
        return self._stats

    def full(self, extra: int = 0) -> bool:
        limit = self._j.max_bytes
        return limit >= 0 and self._stats.bytes + extra > limit

    # -- append (group commit in atomic batches) ---------------------------------------------
    async def append(self, items: Sequence[bytes]) -> tuple[int, int]:
        if not items:
            last = self._stats.last_offset
            return last + 1, last
        nbytes = sum(map(len, items)) + len(self.subject) * len(items)
        if self.full(nbytes + self._queued):
            await self._refresh_stats()  # others may have reclaimed since
            if self.full(nbytes + self._queued):
                raise JournalFull(f"journal partition {self.name} is full ({self._stats.bytes} of "
                                  f"{self._j.max_bytes} bytes)", retry_after=FULL_RETRY_AFTER)
        why = self._j.unavailable()
        if why:  # while disconnected the client would queue the items and send them later
            raise JournalError(f"journal partition {self.name}: {why}")
        fut: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        self._queue.append((items, fut, nbytes))
        self._queued += nbytes
        self._kick()
        return await fut

    def _kick(self) -> None:
        """Start a batch of what is queued: whole appends up to ``ATOMIC_MAX`` items together, a
        larger append alone. With none in flight, at once; beside others (up to ``IN_FLIGHT``),
        only a batch of at least ``ATOMIC_MAX // 2`` items: small appends wait and go together
        (a batch costs the server about as much whatever its size), large ones overlap."""
        while self._queue and (not self._batches or (
                len(self._batches) < IN_FLIGHT and sum(len(x[0]) for x in self._queue) >= ATOMIC_MAX // 2)):
            take, n = [], 0
            while self._queue and (not take or n + len(self._queue[0][0]) <= ATOMIC_MAX):
                entry = self._queue.pop(0)
                self._queued -= entry[2]
                if not entry[1].cancelled():  # its request is gone: nothing of it is stored
                    take.append(entry)
                    n += len(entry[0])
            if take:
                task = asyncio.create_task(self._batch(take), name=f"append-{self.stream}")
                self._batches.add(task)

    async def _batch(self, take: list[tuple[Sequence[bytes], "asyncio.Future[tuple[int, int]]", int]]) -> None:
        try:
            first, last = await self._commit([data for items, _, _ in take for data in items])
        except BaseException as e:
            err = e if isinstance(e, JournalError) else self._j.error(
                f"journal partition {self.name}: append failed", e)
            for _, fut, _ in take:
                if not fut.done():
                    fut.set_exception(err)
            if isinstance(e, asyncio.CancelledError):
                raise
            return
        finally:
            self._batches.discard(asyncio.current_task())  # type: ignore[arg-type]
            if not self._closed:
                self._kick()
        off = first  # one batch: consecutive sequences, in the order of the appends
        for items, fut, _ in take:
            if not fut.done():
                fut.set_result((first, last) if len(take) == 1 else (off, off + len(items) - 1))
            off += len(items)
        st = self._stats
        self._stats = PartitionStats(self.name, st.first_offset or first, max(st.last_offset, last),
                                     st.bytes + sum(x[2] for x in take))

    async def _commit(self, items: list[bytes]) -> tuple[int, int]:
        """Publish ``items`` as atomic batches of at most ``ATOMIC_MAX``, one after the other;
        the first sequence of the first and the last of the last."""
        nc, js, subject, timeout = self._j.nc, self._j.js, self.subject, self._j.timeout
        first = 0
        for start in range(0, len(items), ATOMIC_MAX):
            chunk = items[start:start + ATOMIC_MAX]
            batch = secrets.token_hex(8)
            try:
                for i, data in enumerate(chunk[:-1], 1):
                    await nc.publish(subject, data, headers={BATCH_ID: batch, BATCH_SEQ: str(i)})
                ack = await js.publish(subject, chunk[-1], timeout=timeout, headers={
                    BATCH_ID: batch, BATCH_SEQ: str(len(chunk)), BATCH_COMMIT: "1"})
            except Exception as e:  # noqa: BLE001
                if "maximum bytes" in str(e).lower():
                    raise JournalFull(f"journal partition {self.name} is full (stream {self.stream} refused: "
                                      f"{e})", retry_after=FULL_RETRY_AFTER) from e
                raise self._j.error(f"journal partition {self.name}: append failed", e) from e
            first = first or ack.seq - len(chunk) + 1
        return first, ack.seq

    # -- read -----------------------------------------------------------------------------
    async def read(self, after: int, max_count: int, max_bytes: int) -> list[Entry]:
        if max_count <= 0:
            return []
        nc = self._j.nc
        inbox = nc.new_inbox()
        out: list[Entry] = []
        try:
            sub = await nc.subscribe(inbox)
            try:
                request = orjson.dumps({"seq": after + 1, "batch": max_count, "max_bytes": max(1, max_bytes)})
                await nc.publish(f"$JS.API.DIRECT.GET.{self.stream}", request, reply=inbox)
                while True:
                    msg = await sub.next_msg(self._j.timeout)
                    headers = msg.headers or {}
                    status = headers.get("Status")
                    if status is None:
                        out.append(Entry(int(headers["Nats-Sequence"]), msg.data))
                        continue
                    if status in ("204", "404"):  # end of batch; nothing at or after seq
                        break
                    raise JournalError(f"stream {self.stream}: direct get answered {status} "
                                       f"{headers.get('Description', '')}".rstrip())
            finally:
                await sub.unsubscribe()
        except JournalError:
            raise
        except Exception as e:  # noqa: BLE001
            raise self._j.error(f"journal partition {self.name}: read failed", e) from e
        if out and out[-1].offset > self._stats.last_offset:
            st = self._stats
            self._stats = PartitionStats(self.name, st.first_offset or out[0].offset, out[-1].offset, st.bytes)
        return out

    async def wait(self, after: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if self._stats.last_offset > after:
                return True
            try:
                if (await self._refresh_stats()).last_offset > after:
                    return True
            except JournalError:
                pass  # the server is away: keep waiting until the timeout
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            await asyncio.sleep(min(self._j.poll_interval, remaining))

    # -- cursors --------------------------------------------------------------------------
    def _key(self, consumer: str) -> str:
        if not CONSUMER_RE.match(consumer):
            raise JournalError(f"invalid consumer name {consumer!r}")
        return cursor_key(self.name, consumer)

    async def load_cursor(self, consumer: str) -> Cursor:
        return await self._j.read_cursor(self._key(consumer))

    async def save_cursor(self, consumer: str, cursor: Cursor) -> None:
        key = self._key(consumer)
        data = cursor.encode()
        try:
            await self._j.kv.put(key, data)
        except Exception as e:  # noqa: BLE001
            raise self._j.error(f"journal partition {self.name}: cannot save cursor {consumer!r}", e) from e
        wait = self._last_purge + RECLAIM_EVERY - time.monotonic()
        if wait <= 0:
            await self._reclaim_logged()
        elif self._later is None:  # reclaim once the interval is over, even if no save follows
            self._later = asyncio.create_task(self._reclaim_later(wait), name=f"reclaim-{self.stream}")

    async def _reclaim_later(self, wait: float) -> None:
        await asyncio.sleep(wait)
        self._later = None
        await self._reclaim_logged()

    async def _reclaim_logged(self) -> None:
        """Reclaim; a failure is logged (the cursor is saved: the next save tries again)."""
        try:
            await self._reclaim()
        except JournalError as e:
            log.warning("cannot reclaim journal space now; tried again at the next cursor save",
                        partition=self.name, error=str(e))

    async def _reclaim(self) -> None:
        self._last_purge = time.monotonic()
        floor = None
        for consumer in self._j.consumers:
            acked = (await self._j.read_cursor(self._key(consumer))).acked
            floor = acked if floor is None else min(floor, acked)
        if not floor:
            return
        st = await self._refresh_stats()
        if st.first_offset == 0 or floor < st.first_offset:
            return
        try:
            await self._j.js.purge_stream(self.stream, seq=floor + 1)  # removes every sequence <= floor
        except Exception as e:  # noqa: BLE001
            raise self._j.error(f"journal partition {self.name}: cannot reclaim", e) from e
        await self._refresh_stats()

    async def aclose(self) -> None:
        self._closed = True
        for task in (self._later, *self._batches):  # the connection itself is the journal's
            if task is not None:
                task.cancel()
        self._later = None
        err = JournalError(f"journal partition {self.name} is closed")
        for _, fut, _ in self._queue:
            if not fut.done():
                fut.set_exception(err)
        self._queue.clear()


def sync_problem(varz: dict[str, Any], replicas: int) -> str | None:
    """What keeps a server, as its ``/varz`` describes it, from the gateway's promise (accepted
    means on disk), or None. Streams on 3 or more servers do not need every write synced."""
    js = varz.get("jetstream") or {}
    config = js.get("config") if isinstance(js, dict) else None
    if not isinstance(config, dict):
        return "it does not run JetStream"
    if config.get("sync_always") or replicas >= 3:
        return None
    interval = config.get("sync_interval")
    every = f"every {interval / 1e9:g}s" if isinstance(interval, (int, float)) and interval > 0 else "now and then"
    return (f"it syncs its JetStream store to disk only {every} (sync_interval), so a power cut could lose "
            "records the gateway had accepted")


def check_server_syncs(monitor_url: str, timeout: float, replicas: int) -> None:
    """Read the server's ``/varz`` (blocking) and raise ``JournalError`` naming the problem."""
    import urllib.request

    url = monitor_url.rstrip("/") + "/varz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            varz = orjson.loads(answer.read())
    except (OSError, ValueError) as e:
        raise JournalError(f"cannot read the NATS server's monitoring at {url} (journal.jetstream.monitor_url): "
                           f"{type(e).__name__}: {e}") from None
    problem = sync_problem(varz if isinstance(varz, dict) else {}, replicas)
    if problem:
        raise JournalError(f"the NATS server whose monitoring is {monitor_url} will not do: {problem}. Set "
                           "`sync_interval: always` in the jetstream block of its configuration (or use "
                           "replicas: 3), or remove journal.jetstream.monitor_url to start without this check")


class JetStreamJournal(Journal):
    """``url``: the NATS server(s), comma-separated; ``instance``: this gateway's id (stream
    names); ``max_bytes``: each partition's limit; ``user``/``password`` or ``token``: optional
    credentials; ``replicas``: the streams' ``num_replicas``."""

    def __init__(self, url: str, *, instance: str, max_bytes: int, stream_prefix: str = "SLUICE",
                 subject_prefix: str = "sluice", replicas: int = 1, timeout: float = 10.0,
                 monitor_url: str | None = None, user: str | None = None, password: str | None = None, token: str | None = None,
                 writer: bool = True, writer_name: str | None = None, poll_interval: float = 0.05) -> None:
        self.url = url
        self.instance = instance
        self.max_bytes = max_bytes
        self.root_prefix = f"{stream_prefix}_"
        self.stream_prefix = f"{stream_prefix}_{instance}_"
        self.subject_prefix = f"{subject_prefix}.{instance}."
        self.replicas = replicas
        self.timeout = timeout
        self.monitor_url = monitor_url
        self._auth = {k: v for k, v in (("user", user), ("password", password), ("token", token)) if v}
        self.is_writer = writer
        self.writer_name = writer_name or "w0"
        self.poll_interval = poll_interval
        self.consumers: list[str] = []
        self._parts: dict[str, JetStreamPartition] = {}
        self._own: JetStreamPartition | None = None
        self._nc: "nats.aio.client.Client | None" = None
        self._js: "nats.js.JetStreamContext | None" = None
        self._kv: Any = None
        self._stats_task: asyncio.Task[None] | None = None

    def stream_name(self, partition: str) -> str:
        return self.stream_prefix + partition

    def subject_name(self, partition: str) -> str:
        return self.subject_prefix + partition

    def error(self, what: str, e: BaseException) -> JournalError:
        return JournalError(f"{what} on NATS server {self.url}: {type(e).__name__}: {e}".rstrip(": "))

    @property
    def nc(self) -> "nats.aio.client.Client":
        if self._nc is None:
            raise JournalError("journal is not open")
        return self._nc

    @property
    def js(self) -> "nats.js.JetStreamContext":
        if self._js is None:
            raise JournalError("journal is not open")
        return self._js

    @property
    def kv(self) -> Any:
        if self._kv is None:
            raise JournalError("journal is not open")
        return self._kv

    async def open(self, consumers: Sequence[str]) -> None:
        import nats
        from nats.js.api import DiscardPolicy, KeyValueConfig, StorageType, StreamConfig

        bad = [c for c in consumers if not CONSUMER_RE.match(c)]
        if bad:
            raise JournalError(f"invalid consumer name {bad[0]!r}")
        self.consumers = list(consumers)
        if self.monitor_url and (self.is_writer or consumers):  # not for `journal status`: it only looks
            await asyncio.to_thread(check_server_syncs, self.monitor_url, self.timeout, self.replicas)
        servers = [s.strip() for s in self.url.split(",") if s.strip()]
        try:
            # Reconnects go on for ever once connected; the first connect gives up after ``timeout``.
            self._nc = nats.NATS()
            await asyncio.wait_for(self._nc.connect(
                servers, connect_timeout=self.timeout, allow_reconnect=True, max_reconnect_attempts=-1,
                error_cb=self._on_error, disconnected_cb=self._on_disconnected, reconnected_cb=self._on_reconnected,
                **self._auth), self.timeout)
            self._js = self._nc.jetstream(timeout=self.timeout)
            self._kv = await self._js.create_key_value(KeyValueConfig(
                bucket=self.stream_prefix + "cursors", history=1, storage=StorageType.FILE,
                replicas=self.replicas))
            if self.is_writer:
                name = self.writer_name
                if not valid_name(name):
                    raise JournalError(f"invalid partition name {name!r}")
                await self._js.add_stream(StreamConfig(
                    name=self.stream_name(name), subjects=[self.subject_name(name)], storage=StorageType.FILE,
                    num_replicas=self.replicas, max_bytes=self.max_bytes, discard=DiscardPolicy.NEW,
                    allow_direct=True, allow_atomic=True))
        except JournalError:
            await self.aclose()
            raise
        except Exception as e:  # noqa: BLE001
            await self.aclose()
            raise self.error("cannot open the journal", e) from e
        if self.is_writer:
            self._own = JetStreamPartition(self, self.writer_name)
            self._parts[self._own.name] = self._own
            self._stats_task = asyncio.create_task(self._watch_own(self._own), name="jetstream-stats")
        self._opened = True
        await self.refresh()

    async def _on_error(self, e: Exception) -> None:
        log.warning("NATS connection error", server=self.url, error=f"{type(e).__name__}: {e}")

    async def _on_disconnected(self) -> None:
        if self._nc is None or self._nc.is_closed:
            return  # our own aclose()
        log.warning("disconnected from the NATS server; appends answer 503 until it is back", server=self.url)

    async def _on_reconnected(self) -> None:
        log.info("reconnected to the NATS server", server=self.url)

    async def _watch_own(self, part: JetStreamPartition) -> None:
        """Keep the own stream's size current: consumers in other processes reclaim it."""
        while True:
            await asyncio.sleep(STATS_EVERY)
            try:
                await part._refresh_stats()
            except JournalError:
                pass  # unavailable() says so; appends fail with the cause

    def unavailable(self) -> str | None:
        if self._nc is not None and not self._nc.is_connected:
            return f"not connected to NATS server {self.url}"
        return None

    async def refresh(self) -> list[Partition]:
        try:
            infos = await self.js.streams_info()
        except JournalError:
            raise
        except Exception as e:  # noqa: BLE001
            raise self.error("cannot list the journal's streams", e) from e
        for info in infos:
            stream = info.config.name or ""
            name = stream[len(self.stream_prefix):]
            if not stream.startswith(self.stream_prefix) or not valid_name(name):
                continue  # another instance's, or not the journal's
            part = self._parts.get(name)
            if part is None:
                part = self._parts[name] = JetStreamPartition(self, name)
            s = info.state
            part._stats = PartitionStats(name, s.first_seq if s.messages else 0, s.last_seq, s.bytes)
        return self.partitions()

    async def other_instances(self) -> list[dict[str, Any]]:
        """The journal streams of other gateways on this server (the same ``stream_prefix``,
        another instance id), e.g. left behind by a gateway whose data dir was lost: one dict
        per stream (instance, partition, stream, first and last offset, bytes)."""
        try:
            infos = await self.js.streams_info()
        except Exception as e:  # noqa: BLE001
            raise self.error("cannot list the streams", e) from e
        out = []
        for info in infos:
            stream = info.config.name or ""
            if not stream.startswith(self.root_prefix) or stream.startswith(self.stream_prefix):
                continue
            instance, sep, name = stream[len(self.root_prefix):].partition("_")
            if not sep or not INSTANCE_RE.match(instance) or not valid_name(name):
                continue  # not a journal's stream
            st = info.state
            out.append({"instance": instance, "partition": name, "stream": stream,
                        "first_offset": st.first_seq if st.messages else 0, "last_offset": st.last_seq,
                        "bytes": st.bytes})
        return sorted(out, key=lambda r: (r["instance"], r["partition"]))

    def full(self) -> float | None:
        if self._own is not None and self._own.full(min(64 * 1024, max(0, self.max_bytes) // 16)):
            return FULL_RETRY_AFTER
        return None

    async def read_cursor(self, key: str) -> Cursor:
        from nats.js.errors import KeyNotFoundError

        try:
            entry = await self.kv.get(key)
        except KeyNotFoundError:
            return Cursor()
        except Exception as e:  # noqa: BLE001
            raise self.error(f"cannot read cursor {key!r}", e) from e
        try:
            return Cursor.decode(entry.value or b"")
        except ValueError as e:
            raise JournalCorrupt(f"cursor {key!r} in bucket {self.stream_prefix}cursors is damaged: {e}") from None

    async def cursor(self, partition: str, consumer: str) -> Cursor:
        if not valid_name(partition) or not CONSUMER_RE.match(consumer):
            raise JournalError(f"invalid partition or consumer name {partition!r}/{consumer!r}")
        return await self.read_cursor(cursor_key(partition, consumer))

    async def aclose(self) -> None:
        if self._stats_task is not None:
            self._stats_task.cancel()
            self._stats_task = None
        parts, self._parts = list(self._parts.values()), {}
        for part in parts:
            await part.aclose()
        nc, self._nc, self._js, self._kv, self._own = self._nc, None, None, None, None
        self._opened = False
        if nc is not None:
            try:
                await nc.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
