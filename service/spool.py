"""The local spool: webhooks the database could not take, kept on this machine's disk until it can.

When the database cannot take a batch (connection refused or lost, a timeout), the web process appends the batch to a
spool file, one JSON record per line, and fsyncs it before answering `2xx`: the records are the sealed rows the
database would have got (addresses hashed and encrypted, never in clear). A replayer thread in the same process moves
them into the database once it answers again, in arrival order and idempotently (provider ids are unique), and
deletes a file only after everything in it is committed. While a process has records waiting in the spool, its new
messages are spooled behind them, so they reach the database in the order they arrived.

Files ("segments") are named `<nanoseconds>-<pid>-<n>.spool`, in RETORNO_SPOOL_DIR (default: `spool/` in the data
folder; the folder is 0700, the files 0600). A process holds an exclusive `flock` on the segment it appends to and
starts a new one past a size; a segment that no live process holds (rotated, or left by a process that died) can be
claimed by any replayer on the machine, so a restarted web process replays what its predecessor spooled. Records the
database refuses on replay for what they are (not for being unreachable) go to `rejected/`, for an operator.

The spool is bounded: over RETORNO_SPOOL_MAX_MB, or when the disk refuses a write or an fsync, `SpoolFull` is raised
and the webhook answers `503`: nothing is acknowledged that is not on disk or in the database.
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import orjson
from sqlalchemy import text

from bots.base import StatusUpdate
from service.db import UNAVAILABLE, cause
from service.privacy import UnknownKey
from service.queue import INBOX
from service.runtime import Runtime

log = logging.getLogger(__name__)

SUFFIX = ".spool"
SEGMENT_BYTES = 8 * 1024 * 1024
REPLAY_CHUNK = 500
RETRY_FIRST, RETRY_MAX = 0.25, 2.0
FREE_MARGIN = 4 * 1024 * 1024
ROOM = 4096  # "writable" means there is room for a few more messages
_SQLITE_UNAVAILABLE = ("locked", "busy", "unable to open", "disk i/o", "disk is full")
T = TypeVar("T")


class SpoolFull(RuntimeError):
    """The spool cannot take a record (over RETORNO_SPOOL_MAX_MB, disk full or unwritable): answer 503."""


def unavailable(error: BaseException) -> bool:
    """Whether `error` means the database cannot be reached now (worth spooling), not that the rows are wrong."""
    original = getattr(error, "orig", None) or error
    if isinstance(original, sqlite3.OperationalError) and not getattr(error, "connection_invalidated", False):
        return any(part in str(original).lower() for part in _SQLITE_UNAVAILABLE)
    return cause(error) == UNAVAILABLE


def keep(runtime: Runtime, kind: str, items: list[dict], commit: Callable[[], T]) -> T | None:
    """`commit()`, or, when the database cannot take it (or this process's earlier messages still wait in the spool),
    `items` appended to the spool as records of `kind`: None then. Raises SpoolFull when neither can keep them."""
    spool, full = of(runtime), None
    if spool.holding or spool.others_waiting():
        try:
            spool.append([{kind: item} for item in items])
            return None
        except SpoolFull as error:
            full = error  # the database may take them after all
    try:
        return commit()
    except Exception as error:
        if not unavailable(error):
            raise
        if full is not None:
            raise full from error
        log.warning("database unavailable (%s): spooling %d %s records", type(error).__name__, len(items), kind)
        spool.append([{kind: item} for item in items])
        return None


def status_item(status: StatusUpdate, at: datetime) -> dict:
    """A delivery report as a spool record keeps it."""
    return {"provider_id": status.provider_id, "status": status.status, "error_code": status.error_code, "at": at}


class _Segment:
    """The file a process appends to, with the part of it already fsynced."""

    __slots__ = ("fd", "path", "size", "synced", "lock", "closed", "broken")

    def __init__(self, fd: int, path: Path):
        self.fd, self.path = fd, path
        self.size = self.synced = 0
        self.lock = threading.Lock()
        self.closed = self.broken = False

    def sync(self, end: int) -> None:
        """Make the file durable up to byte `end`; one fdatasync serves every request that waits for it."""
        with self.lock:
            if self.synced >= end:
                return
            if self.broken or self.closed:
                raise SpoolFull("an fsync of this spool file failed")
            target = self.size
            try:
                os.fdatasync(self.fd)
            except OSError as error:
                self.broken = True
                raise SpoolFull(f"cannot fsync the spool: {error.strerror}") from error
            self.synced = target

    def close(self) -> None:
        """Sync what was written and close the file, releasing its lock to replayers."""
        with self.lock:
            if self.closed:
                return
            if not self.broken and self.synced < self.size:
                try:
                    os.fdatasync(self.fd)
                    self.synced = self.size
                except OSError:
                    self.broken = True
            os.close(self.fd)
            self.closed = True


class Spool:
    """One process's view of this machine's spool folder: appends, replays, and the numbers to watch."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.directory: Path = runtime.settings.spool_path
        self.max_bytes = int(runtime.settings.spool_max_mb * 1024 * 1024)
        self.segment_bytes = max(4096, min(SEGMENT_BYTES, self.max_bytes // 4))
        self.lock = threading.Lock()
        self.segment: _Segment | None = None
        self.mine: set[Path] = set()
        self.holding = False
        self.names = itertools.count(1)
        self.sequence = itertools.count(1)
        self._waiting: tuple[int, bool] | None = None
        self.replayer: threading.Thread | None = None
        self.wake = threading.Event()
        self.stopping = False
        self.appended = self.replayed = self.refused = self.rejected = 0

    # -- writing -------------------------------------------------------------------------------------------------

    def append(self, records: list[dict]) -> None:
        """Write `records` to disk and fsync them, or raise SpoolFull; the replayer takes them from there.

        Each record gets its sequence key `seq` = [nanoseconds, pid, counter], so that replays merge the files of all
        the machine's processes (gunicorn's workers) in arrival order."""
        with self.lock:
            now, pid = time.time_ns(), os.getpid()
            data = b"".join(orjson.dumps({**record, "seq": [now, pid, next(self.sequence)]},
                                         option=orjson.OPT_NAIVE_UTC) + b"\n" for record in records)
            try:
                segment = self._room_for(len(data))
                self._write(segment, data)
            except SpoolFull:
                self.refused += len(records)
                raise
            end = segment.size
            self.holding = True
            self.appended += len(records)
            self._ensure_replayer()
        try:
            segment.sync(end)
        except SpoolFull:
            with self.lock:
                self.refused += len(records)
            raise

    def _room_for(self, size: int) -> _Segment:
        used = self._used()
        if used + size > self.max_bytes:
            raise SpoolFull(f"the spool holds {used} bytes, the most RETORNO_SPOOL_MAX_MB allows")
        segment = self.segment
        if segment is not None and (segment.broken or (segment.size and segment.size + size > self.segment_bytes)):
            self._seal()
            segment = None
        if segment is None:
            segment = self.segment = self._create()
        return segment

    def _write(self, segment: _Segment, data: bytes) -> None:
        view, written = memoryview(data), 0
        try:
            while written < len(data):
                written += os.write(segment.fd, view[written:])
        except OSError as error:
            try:
                os.ftruncate(segment.fd, segment.size)  # no half record left behind
            except OSError:
                segment.broken = True
            raise SpoolFull(f"cannot write the spool: {error.strerror}") from error
        segment.size += len(data)

    def _create(self) -> _Segment:
        """A new segment, locked before its name appears (so no replayer takes it while it is written)."""
        self._ensure_directory()
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(self.names)}{SUFFIX}"
        temporary = self.directory / f".{name}.new"
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
        except OSError as error:
            raise SpoolFull(f"cannot create a spool file in {self.directory}: {error.strerror}") from error
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.rename(temporary, self.directory / name)
            _sync_directory(self.directory)
        except OSError as error:
            os.close(fd)
            temporary.unlink(missing_ok=True)
            raise SpoolFull(f"cannot create a spool file in {self.directory}: {error.strerror}") from error
        return _Segment(fd, self.directory / name)

    def _seal(self) -> None:
        """Close the segment being appended to (called with the lock held): it is now any replayer's to take."""
        segment, self.segment = self.segment, None
        if segment is None:
            return
        segment.close()
        if segment.size:
            self.mine.add(segment.path)
        else:
            segment.path.unlink(missing_ok=True)

    def _ensure_directory(self) -> None:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if self.directory.stat().st_mode & 0o077:
                os.chmod(self.directory, 0o700)
        except OSError as error:
            raise SpoolFull(f"cannot use the spool folder {self.directory}: {error.strerror}") from error

    # -- replaying -----------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Replay what is on disk (an earlier process's spool) in the background, if anything is; purge records set
        aside longer than the retention period."""
        self.purge_rejected()
        if self.segments():
            with self.lock:
                self._ensure_replayer()

    def stop(self) -> None:
        """Stop replaying and close the file being appended to: what is spooled waits for the next process."""
        with self.lock:
            self.stopping = True
            thread = self.replayer
            self._seal()
        self.wake.set()
        if thread is not None:
            thread.join(timeout=10)

    def _ensure_replayer(self) -> None:
        if self.replayer is None and not self.stopping:
            self.replayer = threading.Thread(target=self._replay_loop, name="spool-replay", daemon=True)
            self.replayer.start()

    def _replay_loop(self) -> None:
        """Replay until nothing of this process's waits; while the database is away, try again every 2 s at most."""
        delay = RETRY_FIRST
        while True:
            try:
                self.replay()
                self.purge_rejected()
                done, delay = True, RETRY_FIRST
            except Exception as error:  # noqa: BLE001 - the database is still away, or a file is unreadable: retry
                if unavailable(error):
                    log.info("spool: database still unavailable (%s)", type(error).__name__)
                elif isinstance(error, UnknownKey):
                    log.error("spool: records wait for a key: %s (fix RETORNO_SECRET_KEY and restart)", error)
                else:
                    log.exception("spool: replay failed; retrying")
                done, delay = False, min(delay * 2, RETRY_MAX)
            with self.lock:
                if self.stopping or (done and not self.holding):
                    self.replayer = None
                    return
            self.wake.wait(0.1 if done else delay)
            self.wake.clear()

    def replay(self) -> int:
        """Move every record this process can claim into the database, in arrival order; how many moved.

        Raises while the database is unreachable (before touching the segment being appended to)."""
        self.probe()
        with self.lock:
            self._seal()
        moved = self.replay_all()
        self._remove_abandoned()
        with self.lock:
            self.mine = {path for path in self.mine if path.exists()}
            if self.segment is None and not self.mine:
                self.holding = False
        return moved

    def probe(self) -> None:
        """Raise unless the database answers."""
        with self.runtime.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def others_waiting(self) -> bool:
        """Whether any process of this machine has records waiting in the spool (so a new message must queue behind
        them, whichever worker took it). One stat of the folder; its listing only when the folder changed."""
        try:
            changed = os.stat(self.directory).st_mtime_ns
        except OSError:
            return False
        cached = self._waiting
        if cached is not None and cached[0] == changed:
            return cached[1]
        waiting = any(name.endswith(SUFFIX) and not name.startswith(".") for name in _names(self.directory))
        self._waiting = (changed, waiting)
        return waiting

    def replay_segment(self, path: Path) -> int:
        """Replay what can be claimed now (every segment, merged in arrival order); kept for callers that name one."""
        return self.replay_all()

    def replay_all(self) -> int:
        """Claim every segment no live process appends to, merge their records by sequence key, commit those that
        arrived before the oldest segment still being appended to (its records may come earlier than the rest), and
        remove what was committed. One replayer at a time per machine (a lock file), so order holds across processes.
        """
        self._ensure_directory()
        guard = os.open(self.directory / ".replay.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        claimed: list[tuple[Path, int]] = []
        try:
            try:
                fcntl.flock(guard, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # another process replays now; ours wait for its turn
            horizon: int | None = None
            for path in self.segments():
                try:
                    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)  # a live process appends to it: nothing it holds is older than its name
                    born = _born_ns(path.name)
                    horizon = born if horizon is None or (born is not None and born < horizon) else horizon
                    continue
                if os.fstat(fd).st_nlink == 0:
                    os.close(fd)
                    continue
                claimed.append((path, fd))
            return self._replay_claimed(claimed, horizon)
        finally:
            for _, fd in claimed:
                os.close(fd)
            os.close(guard)

    def _replay_claimed(self, claimed: list[tuple[Path, int]], horizon: int | None) -> int:
        keyed: list[tuple[tuple, int, dict]] = []
        for index, (path, fd) in enumerate(claimed):
            records, torn = _parse(_read_all(fd))
            if torn:
                log.warning("spool: %s ends with %d incomplete records (never acknowledged), skipped", path.name, torn)
            born, pid = _born_ns(path.name) or 0, _pid(path.name)
            for line, record in enumerate(records):
                keyed.append((_key(record.get("seq"), born, pid, line), index, record))
        keyed.sort(key=lambda item: item[0])
        ready = [item for item in keyed if horizon is None or item[0][0] < horizon]
        self._apply([record for _, _, record in ready])
        later = [item for item in keyed if not (horizon is None or item[0][0] < horizon)]
        for index, (path, _) in enumerate(claimed):
            rest = [record for _, i, record in later if i == index]
            if rest:
                self._rewrite(rest)
            path.unlink()
        if claimed:
            _sync_directory(self.directory)
        with self.lock:
            self.replayed += len(ready)
        if ready:
            log.info("spool: %d records of %d files moved into the database", len(ready), len(claimed))
        return len(ready)

    def _rewrite(self, records: list[dict]) -> None:
        """Records not replayed yet (they came after a live process's first record) as a new segment, named after
        the first of them so it keeps its place in arrival order."""
        first = _key(records[0].get("seq"), 0, 0, 0)[0]
        name = f"{first:020d}-{os.getpid()}-r{next(self.names)}{SUFFIX}"
        temporary = self.directory / f".{name}.new"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            data = b"".join(orjson.dumps(record, option=orjson.OPT_NAIVE_UTC) + b"\n" for record in records)
            view, written = memoryview(data), 0
            while written < len(data):
                written += os.write(fd, view[written:])
            os.fdatasync(fd)
        finally:
            os.close(fd)
        os.rename(temporary, self.directory / name)

    def _remove_abandoned(self) -> None:
        """Remove new segments a process died creating (before its first record), once they are a minute old."""
        for name in _names(self.directory):
            path = self.directory / name
            try:
                if name.startswith(".") and name.endswith(SUFFIX + ".new") and time.time() - path.stat().st_mtime > 60:
                    path.unlink()
            except FileNotFoundError:
                pass

    def _apply(self, records: list[dict]) -> None:
        """Commit records in order: consecutive messages in chunks, delivery reports one at a time."""
        rows: list[dict] = []
        for record in records:
            if "inbound" in record:
                rows.append(_row(record["inbound"]))
                if len(rows) >= REPLAY_CHUNK:
                    self._insert(rows)
                    rows = []
            else:
                self._insert(rows)
                rows = []
                self._status(record)
        self._insert(rows)

    def _insert(self, rows: list[dict]) -> None:
        from service.inbox import insert_new, unsealed_hash  # service.inbox imports this module

        if not rows:
            return
        rows = [unsealed_hash(self.runtime, row) for row in rows]
        try:
            with self.runtime.sessions() as session, session.begin():
                ids = insert_new(session, rows)
        except Exception as error:
            if unavailable(error):
                raise
            if len(rows) > 1:  # find the rows it refuses; the others go in
                for row in rows:
                    self._insert([row])
                return
            self._reject([{"inbound": rows[0]}], error)
            return
        new = [i for i in ids if i is not None]
        if new:
            self.runtime.dispatcher.push(INBOX, new)

    def _status(self, record: dict) -> None:
        from service.inbox import record_status

        item = record.get("status")
        try:
            if not isinstance(item, dict):
                raise ValueError("not a spool record")
            update = StatusUpdate(item["provider_id"], item["status"], item.get("error_code"))
            record_status(self.runtime, update, at=datetime.fromisoformat(item["at"]))
        except Exception as error:
            if unavailable(error):
                raise
            self._reject([record], error)

    def _reject(self, records: list[dict], error: BaseException) -> None:
        """Keep records the database refuses for what they are in `rejected/`, for an operator (never dropped)."""
        folder = self.rejected_folder
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = folder / f"{time.time_ns():020d}-{os.getpid()}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, b"".join(orjson.dumps(r, option=orjson.OPT_NAIVE_UTC) + b"\n" for r in records))
            os.fsync(fd)
        finally:
            os.close(fd)
        _sync_directory(folder)
        with self.lock:
            self.rejected += len(records)
        log.error("spool: the database refused %d spooled records (%s); kept in %s", len(records),
                  type(error).__name__, path)

    # -- records set aside ---------------------------------------------------------------------------------------

    @property
    def rejected_folder(self) -> Path:
        return self.directory / "rejected"

    def rejected_files(self) -> list[Path]:
        """Files of records the database refused on replay, oldest first."""
        folder = self.rejected_folder
        return [folder / name for name in sorted(_names(folder)) if name.endswith(".jsonl") and _born(name) is not None]

    def rejected_stats(self, now: float | None = None) -> dict:
        """Files, records and bytes set aside, the oldest one's age, and when they are purged."""
        now = time.time() if now is None else now
        files, records, size, oldest = 0, 0, 0, 0.0
        for path in self.rejected_files():
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            files, records, size = files + 1, records + data.count(b"\n"), size + len(data)
            oldest = max(oldest, now - (_born(path.name) or now))
        return {"rejected_files": files, "rejected_records": records, "rejected_bytes": size,
                "rejected_oldest_seconds": round(max(0.0, oldest), 1),
                "rejected_purged_after_days": self.runtime.settings.retention_days}

    def purge_rejected(self, now: float | None = None) -> int:
        """Delete the files of records set aside longer than RETORNO_RETENTION_DAYS (they hold message bodies, as
        the purged messages did); how many records went."""
        now = time.time() if now is None else now
        limit = self.runtime.settings.retention_days * 86400
        purged = 0
        for path in self.rejected_files():
            if now - (_born(path.name) or now) <= limit:
                continue
            try:
                purged += path.read_bytes().count(b"\n")
                path.unlink()
            except FileNotFoundError:
                continue
        if purged:
            _sync_directory(self.rejected_folder)
            log.info("spool: %d records set aside in %s longer than the retention period were deleted", purged,
                     self.rejected_folder)
        return purged

    # -- watching ------------------------------------------------------------------------------------------------

    def segments(self) -> list[Path]:
        """This machine's segments, oldest first."""
        return [self.directory / name for name in sorted(_names(self.directory))
                if name.endswith(SUFFIX) and not name.startswith(".")]

    def _used(self) -> int:
        total = 0
        for path in self.segments():
            try:
                total += path.stat().st_size
            except FileNotFoundError:
                pass
        return total

    def writable(self) -> bool:
        """Whether the spool can take more now (its folder usable, under its limit, the disk not nearly full)."""
        try:
            self._ensure_directory()
            if not os.access(self.directory, os.W_OK):
                return False
            disk = os.statvfs(self.directory)
        except (OSError, SpoolFull):
            return False
        return self._used() + ROOM <= self.max_bytes and disk.f_bavail * disk.f_frsize > FREE_MARGIN

    def stats(self) -> dict:
        """What an operator watches: this machine's spool (bytes, files, oldest record) and this process's counts."""
        segments = self.segments()
        oldest = 0.0
        if segments:
            oldest = max(0.0, time.time() - int(segments[0].name.split("-", 1)[0]) / 1e9)
        return {
            "bytes": self._used(), "files": len(segments), "oldest_seconds": round(oldest, 1),
            "appended": self.appended, "replayed": self.replayed, "refused": self.refused, "rejected": self.rejected,
            **self.rejected_stats(),
        }


def _born_ns(name: str) -> int | None:
    head = name.lstrip(".").split("-", 1)[0]
    return int(head) if head.isascii() and head.isdigit() else None


def _pid(name: str) -> int:
    parts = name.split("-")
    return int(parts[1]) if len(parts) > 2 and parts[1].isascii() and parts[1].isdigit() else 0


def _key(seq, born: int, pid: int, line: int) -> tuple[int, int, int]:
    """A record's place in arrival order: its `seq`, or (for records spooled before keys existed) its file's birth,
    the file's process and its line."""
    if isinstance(seq, list) and len(seq) == 3 and all(isinstance(part, int) for part in seq):
        return (seq[0], seq[1], seq[2])
    return (born, pid, line)


def _born(name: str) -> float | None:
    """When a spool or rejected file was made (its name starts with the nanoseconds), in seconds; None if unnamed."""
    head = name.lstrip(".").split("-", 1)[0]
    return int(head) / 1e9 if head.isascii() and head.isdigit() else None


def _names(directory: Path) -> list[str]:
    try:
        return os.listdir(directory)
    except OSError:
        return []


def _row(raw: dict) -> dict:
    """An inbound_messages row as spooled, with its arrival time a datetime again."""
    row = dict(raw)
    row["received_at"] = datetime.fromisoformat(row["received_at"])
    return row


def _parse(data: bytes) -> tuple[list[dict], int]:
    """The records of a segment, and how many lines were incomplete (the tail of a write cut short)."""
    lines = data.split(b"\n")
    torn = 1 if lines.pop() else 0
    records = []
    for line in lines:
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            torn += 1
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            torn += 1
    return records, torn


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1024 * 1024):
        chunks.append(chunk)
    return b"".join(chunks)


def _sync_directory(directory: Path) -> None:
    """Make a file's creation, rename or removal in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_spools: dict[int, Spool] = {}
_spools_lock = threading.Lock()


def of(runtime: Runtime) -> Spool:
    """This process's spool for `runtime` (a forked process gets its own)."""
    found = _spools.get(id(runtime))
    if found is not None and found.runtime is runtime:
        return found
    with _spools_lock:
        found = _spools.get(id(runtime))
        if found is None or found.runtime is not runtime:
            found = _spools[id(runtime)] = Spool(runtime)
        return found


def _forget_after_fork() -> None:
    """A forked child (gunicorn's workers) starts with no spool: its parent's file, lock and thread are not its own."""
    global _spools_lock
    _spools.clear()
    _spools_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
