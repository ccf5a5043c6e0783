"""Attack every ``poetrylab serve`` kind through the command line, as a hostile client would.

Run: ``.venv/bin/python scripts/attack_servers.py`` (about two minutes; ``--kinds slow,xmlrpc``
for some of them, ``--json out.json`` to keep the figures, ``--soak`` for the long
memory runs: the proxy after 1,000 and 10,000 fetches with ``--ttl 0``, and the tagged
backend with 20,000 requests whose replies are never read).

Each kind is started as a real ``poetrylab serve`` process on loopback. While the attacks
run, a well-behaved client asks the server for a normal answer every 0.3 s (a poem, a
transformed line, a sum), and a sampler reads the server's resident memory and open
file descriptors from ``/proc``. The attacks, each bounded in count and time:

* every kind: connect-and-leave, resets (RST), 200 idle connections at once, garbage
  and 1 MB of random bytes, a request trickled a byte at a time, a client that half-closes
  (``nc -N``), a client that never reads;
* transform: malformed, oversized, huge-length and non-UTF-8 netstrings, private and
  unknown names, two requests on one connection, end of input before the request is whole;
* tagged: untagged and unparsable lines, bad JSON, unknown verbs, a line over the limit,
  more requests in flight than allowed, requests followed by end of input;
* proxy: an upstream that refuses, stalls, resets mid-poem, or streams without end;
* xmlrpc: billion-laughs and external-entity DOCTYPEs, an oversized body, malformed XML,
  wrong types and counts, unknown methods, a client that leaves mid-call;
* bad arguments on the command line (one line on stderr, status 2), and at the end
  SIGTERM while a client is stuck (the server must exit 0 within 2 s).

A kind fails when an attack gets the wrong answer, when the server dies, leaks a file
descriptor, grows by more than 100 MiB, writes a traceback or a CRITICAL line to its
log, or stops answering the well-behaved client.

Reported per kind: attacks passed, peak resident memory (the kernel's VmHWM), memory and
file descriptors before and after, the well-behaved client's failures, the exit status
and how long the server took to exit. The exit status is 1 if any server died, leaked a
descriptor, failed an attack or stopped serving the well-behaved client. Linux only
(``/proc``). Figures depend on the machine's load: note the load average with them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import xmlrpc.client
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from poetrylab.corpus import load_poem
from poetrylab.download import Address
from poetrylab.testing import ServerProcess, read_to_eof, run_cli

RAVEN = load_poem("raven").data
SEED = 12
BIG_POEM = b"".join(b"line %07d: quoth the raven, nevermore\n" % i for i in range(60_000))  # 2.5 MB

# Short timeouts keep the run bounded: the defaults are longer, the behaviour the same.
SERVER_ARGS = {
    "slow": ["raven", "--delay", "0.01", "--num-bytes", "500", "--send-timeout", "3"],
    "fast": ["{big}", "--send-timeout", "3"],
    "blocking": ["{big}", "--delay", "0", "--num-bytes", "65536", "--send-timeout", "2"],
    "transform": ["--idle-timeout", "3", "--send-timeout", "3", "--max-bytes", "300000"],
    "proxy": ["--upstream", "{upstream}", "--ttl", "0", "--timeout", "3", "--max-bytes", "3000000",
              "--send-timeout", "3"],
    "tagged": ["--idle-timeout", "5"],
    "xmlrpc": ["--idle-timeout", "3", "--timeout", "3", "--backend-delay", "0.01"],
}  # fmt: skip


# ---------------------------------------------------------------------------------------
# Looking at the server from outside: memory, descriptors, a well-behaved client.


def _proc_status(pid: int, field_name: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Report:
    """What happened to one kind of server under attack."""

    kind: str
    attacks: dict[str, str] = field(default_factory=dict)  # name -> "ok" or what went wrong
    rss_start_mib: float = 0.0
    rss_end_mib: float = 0.0
    peak_rss_mib: float = 0.0
    fds_start: int = 0
    fds_end: int = 0
    probe_ok: int = 0
    probe_failures: list[str] = field(default_factory=list)
    exit_status: int | None = None
    exit_seconds: float = 0.0
    died: bool = False
    log_problems: list[str] = field(default_factory=list)  # tracebacks, CRITICAL lines

    @property
    def failed(self) -> list[str]:
        failed = [f"{name}: {what}" for name, what in self.attacks.items() if what != "ok"]
        grew = self.peak_rss_mib - self.rss_start_mib
        if grew > MEMORY_BOUND_MIB:
            failed.append(f"memory grew by {grew:.0f} MiB")
        return failed + self.log_problems

    @property
    def healthy(self) -> bool:
        return (
            not self.failed
            and not self.died
            and self.fds_end <= self.fds_start
            and not self.probe_failures
            and self.exit_status == 0
            and self.exit_seconds < 2.0
        )


class Prober:
    """A well-behaved client asking for a normal answer every 0.3 s, in a thread."""

    def __init__(self, check: Callable[[], None], report: Report, timeout: float) -> None:
        self._check = check
        self._report = report
        self._timeout = timeout
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.paused = threading.Event()

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(self._timeout + 5)

    def _run(self) -> None:
        while not self._stop.wait(0.3):
            if self.paused.is_set():
                continue
            started = time.monotonic()
            try:
                self._check()
            except Exception as exc:  # noqa: BLE001 - any failure is what we report
                took = time.monotonic() - started
                self._report.probe_failures.append(
                    f"{type(exc).__name__}: {exc} after {took:.1f} s"
                )
            else:
                self._report.probe_ok += 1


def _probe_for(kind: str, server: ServerProcess, expected: bytes) -> Callable[[], None]:
    address = server.address

    def poem() -> None:
        got = read_to_eof(address, timeout=15)
        if got != expected:
            raise AssertionError(f"got {len(got)} bytes, not the {len(expected)} of the poem")

    def transform() -> None:
        if _ask(address, _netstring(b"cummingsify.QUOTH THE RAVEN"), 10) != _netstring(
            b"quoth the raven"
        ):
            raise AssertionError("no transformed reply")

    def tagged() -> None:
        if _ask_line(address, b"p add [40, 2]\n", 10) != b"p ok 42\n":
            raise AssertionError("no sum")

    def gateway() -> None:
        with xmlrpc.client.ServerProxy(f"http://{address}/RPC2") as rpc:
            if rpc.add(40, 2) != 42:
                raise AssertionError("wrong sum")

    return {"transform": transform, "tagged": tagged, "xmlrpc": gateway}.get(kind, poem)


# ---------------------------------------------------------------------------------------
# Small clients.


def _netstring(data: bytes) -> bytes:
    return b"%d:%s," % (len(data), data)


def _connect(address: Address, timeout: float = 10.0, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in address.host else socket.AF_INET)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect
    sock.settimeout(timeout)
    sock.connect(address)
    return sock


def _read_all(sock: socket.socket, limit: int = 64 << 20) -> bytes:
    data = bytearray()
    with contextlib.suppress(OSError):
        while len(data) < limit and (chunk := sock.recv(65536)):
            data += chunk
    return bytes(data)


def _ask(
    address: Address, request: bytes, timeout: float = 10.0, half_close: bool = False
) -> bytes:
    with _connect(address, timeout) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(request)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        return _read_all(sock)


def _ask_line(address: Address, line: bytes, timeout: float = 10.0) -> bytes:
    with _connect(address, timeout) as sock:
        sock.sendall(line)
        with sock.makefile("rb") as reader:
            return reader.readline()


def _reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# ---------------------------------------------------------------------------------------
# Attacks every kind gets. Each returns None when the server behaved, else what went wrong.


def connect_and_leave(address: Address, kind: str) -> str | None:
    for _ in range(200):
        with contextlib.suppress(OSError):
            _connect(address).close()
    return None


def resets(address: Address, kind: str) -> str | None:
    for _ in range(100):
        with contextlib.suppress(OSError):
            sock = _connect(address)
            sock.sendall(b"x")
            _reset(sock)
    return None


def idle_flood(address: Address, kind: str) -> str | None:
    socks = []
    try:
        for _ in range(200):
            socks.append(_connect(address))
        time.sleep(1.0)  # the attack: hold them open, idle, while the prober works
    finally:
        for sock in socks:
            sock.close()
    return None


def garbage(address: Address, kind: str) -> str | None:
    rng = random.Random(SEED)
    for size in (1, 17, 4096, 1 << 20):
        _ask(address, rng.randbytes(size), timeout=10, half_close=True)
    return None


def trickle(address: Address, kind: str) -> str | None:
    """A request sent one byte every 0.1 s for 2 s: slowloris."""
    request = {
        "transform": b"99:cummingsify.",
        "tagged": b"t add [1, 2]",
        "xmlrpc": b"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n",
    }.get(kind, b"hello poet")
    with _connect(address, timeout=15) as sock:
        for byte in request[:20]:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            time.sleep(0.1)
    return None


def half_close(address: Address, kind: str) -> str | None:
    """``nc -N``: the request, then end of input; the answer must still come, whole."""
    ask, expect = {
        "transform": (_netstring(b"cummingsify.NC -N"), _netstring(b"nc -n")),
        "tagged": (b"a add [1, 2]\nb add [3, 4]", b"a ok 3\nb ok 7\n"),
        "xmlrpc": (None, None),  # HTTP clients do not half-close; FIN means gone
        "proxy": (None, None),  # before the poem: cannot be told from leaving (notebook 07)
    }.get(kind, (b"", None))
    if ask is None:
        return None
    got = _ask(address, ask, timeout=15, half_close=True)
    if expect is None:  # a poetry server: the whole poem
        return None if len(got) > 0 and got in (RAVEN, BIG_POEM) else f"got {len(got)} bytes"
    if kind == "tagged":
        got = b"\n".join(sorted(got.splitlines())) + b"\n"
    return None if got == expect else f"got {got[:60]!r}"


def never_reads(address: Address, kind: str) -> str | None:
    """Ask, then never read, for 4 s (longer than the servers' send timeouts here)."""
    ask = {
        "transform": _netstring(b"cummingsify." + b"A" * 250_000),
        "tagged": b"".join(b'%d poem ["raven"]\n' % i for i in range(2000)),
        "xmlrpc": None,
    }.get(kind, b"")
    if ask is None:
        return None
    with _connect(address, timeout=10, rcvbuf=4096) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(ask)
        time.sleep(4.0)
    return None


def idle_is_closed(address: Address, kind: str) -> str | None:
    """A connection that sends nothing must be closed after the kind's idle timeout."""
    limit = {"transform": 3, "tagged": 5, "xmlrpc": 3}.get(kind)
    if limit is None:  # a poetry server talks first: it is never idle
        return None
    with _connect(address, timeout=limit + 5) as sock:
        try:
            if sock.recv(1) == b"":
                return None
        except TimeoutError:
            return f"still open after {limit + 5} s with nothing sent"
        except OSError:
            return None  # reset: closed too
    return "sent something to a silent client"


COMMON = [
    connect_and_leave, resets, idle_flood, garbage, trickle, half_close, never_reads,
    idle_is_closed,
]  # fmt: skip

MEMORY_BOUND_MIB = 100
"""More growth than this, start to peak, under attack counts as memory that only grows."""


# ---------------------------------------------------------------------------------------
# Attacks on each protocol.


def transform_frames(address: Address, kind: str) -> str | None:
    refused = [
        b"5:hello",  # no comma
        b"abc:x,",  # not a length
        b"99999999999999999999:x,",  # a length past the limit
        _netstring(b"no-dot-here"),
        _netstring(b"__class__.x"),
        _netstring(b"_private.x"),
        _netstring(b"nosuch.x"),
        _netstring(b"cummingsify.\xff\xfe"),  # not UTF-8
        _netstring(b"cummingsify." + b"x" * 400_000),  # over --max-bytes
    ]
    for request in refused:
        got = _ask(address, request, timeout=10)
        if got:
            return f"answered {request[:30]!r} with {got[:30]!r}"
    two = _ask(address, _netstring(b"cummingsify.A") + _netstring(b"cummingsify.B"), 10)
    if two != _netstring(b"a"):
        return f"two requests got {two!r}"
    early = _ask(address, b"20:cummingsify.", timeout=10, half_close=True)
    return None if early == b"" else f"an unfinished request got {early!r}"


def tagged_lines(address: Address, kind: str) -> str | None:
    lines = [
        b"\xff\xfe garbage",
        b"no-verb",
        b"x nope",
        b"y add [1,",
        b'z add ["a", 2]',
        b"w add [1e999, 1]",
        b"v " + b"9" * 300_000,  # over the line limit: an error, then the connection closes
    ]
    got = _ask(address, b"\n".join(lines) + b"\n", timeout=15, half_close=True)
    tags = sorted(line.split(b" ", 1)[0] for line in got.splitlines())
    if tags != [b"no-verb", b"v", b"w", b"x", b"y", b"z"]:  # each readable tag: an error
        return f"error replies for {tags}"
    busy = _ask(address, b"".join(b"%d list_poems\n" % i for i in range(3000)), 30, True)
    if len(busy.splitlines()) != 3000:
        return f"{len(busy.splitlines())} replies to 3000 requests"
    return None


def hostile_xml(address: Address, kind: str) -> str | None:
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "' + "x" * 10_000 + '">]><methodCall>'
        "<methodName>poem</methodName><params><param><value><string>"
        + "&a;" * 9_000
        + "</string></value></param></params></methodCall>"
    ).encode()
    external = b'<?xml version="1.0"?><!DOCTYPE m SYSTEM "file:///etc/passwd"><methodCall/>'
    faults = {
        "billion laughs": laughs,
        "external entity": external,
        "malformed": b"<methodCall><methodName>add</methodName><params>",
        "not a call": b"<methodResponse><params/></methodResponse>",
        "deep nesting": b"<methodCall><methodName>add</methodName><params><param><value>"
        + b"<array><data><value>" * 5000
        + b"</value></data></array>" * 5000
        + b"</value></param></params></methodCall>",
        "wrong types": xmlrpc.client.dumps(("a", [1]), "add").encode(),
        "wrong count": xmlrpc.client.dumps((1,), "add").encode(),
        "unknown": xmlrpc.client.dumps((), "system.shutdown").encode(),
    }
    for name, body in faults.items():
        reply = _post(address, body)
        if b"<fault>" not in reply:
            return f"{name}: no Fault ({reply[:80]!r})"
    big = _post(address, b"<methodCall>" + b" " * (2 << 20) + b"</methodCall>")
    if b"<fault>" in big or b"200 OK" in big:
        return "a 2 MB body was accepted"
    # A client that leaves mid-call (the backend answers after 10 ms: leave at once).
    for _ in range(50):
        with contextlib.suppress(OSError):
            sock = _connect(address)
            body = xmlrpc.client.dumps(("raven",), "poem").encode()
            sock.sendall(b"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(body), body))  # fmt: skip
            _reset(sock)
    return None


def _post(address: Address, body: bytes) -> bytes:
    head = b"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
    return _ask(address, head % len(body) + body, timeout=20)


class Upstream:
    """The proxy's upstream, in this process: it behaves as ``mode`` says."""

    def __init__(self) -> None:
        self.mode = "poem"
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.address = Address("127.0.0.1", self._sock.getsockname()[1])
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn, self.mode), daemon=True).start()

    def _one(self, conn: socket.socket, mode: str) -> None:
        with conn, contextlib.suppress(OSError):
            if mode == "poem":
                conn.sendall(RAVEN)
            elif mode == "stall":
                time.sleep(6)
            elif mode == "reset":
                conn.sendall(RAVEN[:1000])
                _reset(conn)
            elif mode == "endless":
                deadline = time.monotonic() + 8
                chunk = b"and the raven, never flitting, still is sitting\n" * 1000
                while time.monotonic() < deadline:
                    conn.sendall(chunk)

    def close(self) -> None:
        self._stop.set()
        self._sock.close()


def upstream_faults(upstream: Upstream) -> Callable[[Address, str], str | None]:
    def attack(address: Address, kind: str) -> str | None:
        try:
            for mode in ("stall", "reset", "endless"):
                upstream.mode = mode
                got = read_to_eof(address, timeout=20)
                if got:
                    return f"upstream {mode}: the client got {len(got)} bytes, not none"
        finally:
            upstream.mode = "poem"
        return None

    attack.breaks_upstream = True  # type: ignore[attr-defined]
    attack.__name__ = "upstream_faults"
    return attack


def bad_arguments(kind: str) -> str | None:
    for args in (["--port", "70000"], ["--port", "-1"], ["--iface", "256.1.1.1"]):
        result = run_cli(
            ["serve", kind, *args, *(["--upstream", "127.0.0.1:9"] if kind == "proxy" else [])]
        )
        if result.returncode != 2 or result.stderr.count("\n") != 1 or "Traceback" in result.stderr:
            return f"{args}: status {result.returncode}, {result.stderr[-200:]!r}"
    return None


# ---------------------------------------------------------------------------------------
# Running it all.


def _settle(server: ServerProcess, baseline: int, timeout: float = 8.0) -> int:
    """Wait for the server's descriptors to come back down to ``baseline``; return the count."""
    deadline = time.monotonic() + timeout
    while (fds := server.open_fds()) > baseline and time.monotonic() < deadline:
        time.sleep(0.1)
    return fds


def attack_kind(kind: str, big: Path, upstream: Upstream) -> Report:
    report = Report(kind)
    args = [a.format(big=big, upstream=upstream.address) for a in SERVER_ARGS[kind]]
    expected = BIG_POEM if kind in ("fast", "blocking") else RAVEN
    server = ServerProcess(kind, *args, listeners=2 if kind == "xmlrpc" else 1)
    try:
        probe = _probe_for(kind, server, expected)
        probe()  # warm: imports, caches, the gateway's backend connection
        report.fds_start = server.open_fds()
        report.rss_start_mib = server.rss_kib() / 1024
        attacks = list(COMMON)
        attacks += {
            "transform": [transform_frames],
            "tagged": [tagged_lines],
            "xmlrpc": [hostile_xml],
            "proxy": [upstream_faults(upstream)],
        }.get(kind, [])
        timeout = 15.0 if kind == "blocking" else 10.0  # one client at a time, by design
        with Prober(probe, report, timeout) as prober:
            for attack in attacks:
                try:
                    # While the proxy's upstream is broken on purpose, nobody can get a
                    # poem through it: the well-behaved client waits until it is mended.
                    if getattr(attack, "breaks_upstream", False):
                        prober.paused.set()
                    problem = attack(server.address, kind)
                except Exception as exc:  # noqa: BLE001 - the attack itself failed: report it
                    problem = f"{type(exc).__name__}: {exc}"
                finally:
                    prober.paused.clear()
                report.attacks[attack.__name__] = problem or "ok"
                if server.process.poll() is not None:
                    report.died = True
                    break
        problem = bad_arguments(kind)
        report.attacks["bad_arguments"] = problem or "ok"
        report.fds_end = _settle(server, report.fds_start)
        report.rss_end_mib = server.rss_kib() / 1024
        report.peak_rss_mib = _proc_status(server.pid, "VmHWM") / 1024
        # The end: SIGTERM while a client is stuck in a download.
        stuck = _connect(server.address, rcvbuf=4096)
        try:
            time.sleep(0.5)
            started = time.monotonic()
            report.exit_status = server.stop(signal.SIGTERM, timeout=10)
            report.exit_seconds = time.monotonic() - started
        finally:
            stuck.close()
        log = server.stderr_text().splitlines()
        bad = [line.strip() for line in log if "Traceback" in line or "CRITICAL" in line]
        report.log_problems = [f"log: {line[:120]}" for line in bad[:3]]
    except TimeoutError as exc:
        report.exit_status = None
        report.attacks["signals"] = str(exc)
    finally:
        server.kill()
    return report


def soak_proxy(upstream: Upstream, counts: tuple[int, ...] = (1_000, 10_000)) -> dict[str, float]:
    """The proxy's resident memory after 1,000 and 10,000 fetches with --ttl 0 (MiB)."""
    figures: dict[str, float] = {}
    with ServerProcess("proxy", "--upstream", str(upstream.address), "--ttl", "0") as server:
        read_to_eof(server.address)
        figures["after 1 fetch"] = server.rss_kib() / 1024
        done = 1
        for count in counts:
            while done < count:
                if read_to_eof(server.address, timeout=10) != RAVEN:
                    raise AssertionError("the proxy served something else")
                done += 1
            figures[f"after {count:,} fetches"] = server.rss_kib() / 1024
    return figures


def soak_tagged(requests: int = 20_000) -> dict[str, float]:
    """The tagged backend's memory with ``requests`` requests whose replies are never read."""
    with ServerProcess("tagged") as server:
        _ask_line(server.address, b"w add [1, 1]\n")
        before = server.rss_kib() / 1024
        with _connect(server.address, timeout=30) as sock:
            payload = b"".join(b'%d poem ["raven"]\n' % i for i in range(requests))
            sock.settimeout(5)
            with contextlib.suppress(OSError):  # it stops reading: our send times out
                sock.sendall(payload)
            time.sleep(1.0)
            during = server.rss_kib() / 1024
            fine = _ask_line(server.address, b"o add [1, 2]\n") == b"o ok 3\n"
        return {
            "before": before,
            "with the replies unread": during,
            "growth": during - before,
            "serves others meanwhile": float(fine),
        }


def soak_blocking_sigterm(big: Path) -> float:
    """Seconds from SIGTERM to exit for the blocking server with a client stuck in a send."""
    with ServerProcess("blocking", str(big), "--delay", "0", "--num-bytes", "65536",
                       "--send-timeout", "600") as server:  # fmt: skip
        with _connect(server.address, rcvbuf=4096) as stuck:
            stuck.recv(1)
            time.sleep(0.5)  # the server is now blocked sending to it
            started = time.monotonic()
            status = server.stop(signal.SIGTERM, timeout=10)
            took = time.monotonic() - started
        if status != 0:
            raise AssertionError(f"exit status {status}")
        return took


@contextlib.contextmanager
def _big_poem() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big-raven.txt"
        path.write_bytes(BIG_POEM)
        yield path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default=",".join(SERVER_ARGS), help="kinds to attack")
    parser.add_argument("--soak", action="store_true", help="also run the long memory figures")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    args = parser.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"load average: {load}", flush=True)
    upstream = Upstream()
    reports: list[Report] = []
    soak: dict[str, object] = {}
    try:
        with _big_poem() as big:
            for kind in kinds:
                started = time.monotonic()
                report = attack_kind(kind, big, upstream)
                reports.append(report)
                verdict = "ok" if report.healthy else "FAULTS"
                print(f"  {kind:<10} {verdict:<7} peak {report.peak_rss_mib:6.1f} MiB, "
                      f"{len(report.attacks)} attacks, {report.probe_ok} good answers "
                      f"({time.monotonic() - started:.0f} s)", flush=True)  # fmt: skip
            if args.soak:
                soak["proxy RSS MiB, --ttl 0"] = soak_proxy(upstream)
                soak["tagged RSS MiB, 20,000 unread"] = soak_tagged()
                soak["blocking: SIGTERM to exit, s"] = soak_blocking_sigterm(big)
    finally:
        upstream.close()
    print()
    print(f"{'kind':<10} {'peak MiB':>8} {'start':>6} {'end':>6} {'fds':>7} {'good':>5} "
          f"{'exit':>5} {'exit s':>6}  problems")  # fmt: skip
    for r in reports:
        problems = [*r.failed, *r.probe_failures[:3]]
        if r.died:
            problems.insert(0, "DIED")
        if r.fds_end > r.fds_start:
            problems.append(f"leaked {r.fds_end - r.fds_start} fds")
        print(f"{r.kind:<10} {r.peak_rss_mib:8.1f} {r.rss_start_mib:6.1f} {r.rss_end_mib:6.1f} "
              f"{r.fds_start:>3}>{r.fds_end:<3} {r.probe_ok:>5} {r.exit_status!s:>5} "
              f"{r.exit_seconds:6.2f}  {'; '.join(problems) or '-'}")  # fmt: skip
    for name, figures in soak.items():
        print(f"{name}: {figures}")
    if args.json:
        data = {"reports": [asdict(r) for r in reports], "soak": soak}
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0 if all(r.healthy for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
