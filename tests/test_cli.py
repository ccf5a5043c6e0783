"""The CLI contract, end to end: real `poetrylab` processes on loopback, signals, bad input."""

from __future__ import annotations

import os
import re
import select
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from poetrylab.corpus import load_poem
from poetrylab.testing import ServerProcess, read_to_eof, run_cli

ROOT = Path(__file__).resolve().parent.parent
KIND_ARGS = {
    "slow": ["raven", "--delay", "0.001", "--num-bytes", "512"],
    "fast": ["raven"],
    "blocking": ["raven", "--delay", "0.001", "--num-bytes", "512"],
}


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.mark.parametrize("kind", sorted(KIND_ARGS))
def test_serve_says_listening_and_netcat_style_read_gets_the_whole_poem(kind: str) -> None:
    with ServerProcess(kind, *KIND_ARGS[kind]) as server:
        assert server.stdout_lines == [f"listening on 127.0.0.1:{server.address.port}"]
        assert read_to_eof(server.address) == load_poem("raven").data
        assert read_to_eof(server.address) == load_poem("raven").data, "served only once"


@pytest.mark.parametrize("kind", ["slow", "blocking"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_the_server_with_status_zero_and_frees_the_port(kind: str, sig: int) -> None:
    server = ServerProcess(kind, *KIND_ARGS[kind])
    try:
        port = server.address.port
        assert not _port_is_free(port)
        assert server.stop(sig) == 0
        assert _port_is_free(port)
    finally:
        server.kill()


@pytest.mark.parametrize("kind", ["slow", "blocking", "fast"])
def test_port_in_use_is_a_one_line_error_with_status_two(kind: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(["serve", kind, "raven", "--port", str(port)], timeout=30)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert "in use" in result.stderr.lower()
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["serve", "slow", "no-such-poem"], "no poem called 'no-such-poem'"),
        (["serve", "slow", "raven", "--delay", "-1"], "argument --delay: must be"),
        (["serve", "blocking", "raven", "--num-bytes", "0"], "argument --num-bytes: must be"),
        (["serve", "slow", "raven", "--delay", "soon"], "not 'soon'"),
        (["serve", "nosuchkind"], "invalid choice"),
        (["get", "not-an-address"], "not an address"),
        (["get", "--client", "telepathy", "127.0.0.1:1"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_status_two(args: list[str], says: str) -> None:
    result = run_cli(args, timeout=30)
    assert result.returncode == 2, result
    assert result.stderr.count("\n") == 1, result.stderr
    assert says in result.stderr
    assert "Traceback" not in result.stderr


def test_poems_lists_every_corpus_poem_with_its_size() -> None:
    result = run_cli(["poems"])
    assert result.returncode == 0
    assert re.search(r"^raven\s+3710 bytes\s+Once upon a midnight dreary", result.stdout, re.M)
    assert len(result.stdout.splitlines()) >= 5


def test_python_dash_m_and_console_script_are_the_same_command() -> None:
    script = Path(sys.executable).with_name("poetrylab")
    a = subprocess.run([str(script), "poems"], capture_output=True, text=True, timeout=30)
    assert a.returncode == 0
    assert a.stdout == run_cli(["poems"]).stdout


@pytest.fixture(scope="module")
def servers() -> dict[str, ServerProcess]:
    started = {kind: ServerProcess(kind, *KIND_ARGS[kind]) for kind in KIND_ARGS}
    yield started
    for server in started.values():
        server.__exit__(None, None, None)


def test_get_with_every_client_model_downloads_the_poem_byte_for_byte(
    servers: dict[str, ServerProcess],
) -> None:
    from poetrylab.clients import MODELS

    poem = load_poem("raven").text
    for model in MODELS:
        result = run_cli(["get", "--client", model, str(servers["slow"].address)])
        assert result.returncode == 0, (model, result.stderr)
        assert result.stdout.startswith(poem), model
        assert f"3710 bytes from {servers['slow'].address}" in result.stdout, model


def test_every_model_gets_from_every_server_kind_started_by_the_cli(
    servers: dict[str, ServerProcess], reactor: object
) -> None:
    from poetrylab.clients import MODELS, fetch

    poem = load_poem("raven").data
    for model in MODELS:
        for kind, server in servers.items():
            [download] = fetch(model, [server.address], timeout=10, reactor=reactor)
            assert download.ok, (model, kind, download.error)
            assert download.data == poem, (model, kind)
            assert sum(c.size for c in download.chunks) == len(poem)


def test_get_reports_a_refused_server_in_one_line_and_fails(
    servers: dict[str, ServerProcess],
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    result = run_cli(["get", "-q", str(servers["fast"].address), f"127.0.0.1:{dead}"])
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"poetrylab get: 127.0.0.1:{dead}: connection refused (is a server listening there?)"
    ]
    assert "3710 bytes" in result.stdout


def _twistd(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    twistd = Path(sys.executable).with_name("twistd")
    return subprocess.Popen(
        [str(twistd), "-n", "--pidfile=", "--logfile=-", *args],
        cwd=cwd,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )


def _wait_for_port(proc: subprocess.Popen[str], timeout: float = 30.0) -> int:
    """Read twistd's output until it says its port; fail with what it said instead when it
    exits or stays silent for ``timeout`` seconds (the raw pipe: nothing read is buffered
    away from select)."""
    assert proc.stdout is not None
    fd, said = proc.stdout.fileno(), b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0 and selector.select(left):
            chunk = os.read(fd, 65536)
            said += chunk
            match = re.search(rb"PoetryFactory starting on (\d+)", said)
            if match:
                return int(match[1])
            if not chunk:
                break  # twistd exited
    proc.kill()
    raise AssertionError(
        f"twistd did not say it was listening within {timeout} s; it said:\n"
        + said.decode(errors="replace")[-2000:]
    )


@pytest.mark.parametrize("how", ["plugin", "tac"])
def test_twistd_serves_a_poem_through_the_plugin_and_a_tac_file(how: str, tmp_path: Path) -> None:
    if how == "plugin":
        args = ["poetry", "--port", "0", "--fast", "hope"]
    else:
        tac = tmp_path / "poetry.tac"
        tac.write_text(
            (ROOT / "examples" / "poetry.tac")
            .read_text()
            .replace("port=10000", "port=0")
            .replace("num_bytes=10", "num_bytes=4096")
        )
        args = ["-y", str(tac)]
    proc = _twistd(args, tmp_path)
    try:
        port = _wait_for_port(proc)
        expected = load_poem("hope" if how == "plugin" else "raven").data
        assert read_to_eof(("127.0.0.1", port), timeout=30) == expected
    finally:
        proc.send_signal(signal.SIGTERM)
        # twistd shuts down cleanly, then re-raises the signal so its status says why it ended.
        assert proc.wait(15) in (0, -signal.SIGTERM)
        proc.stdout.close()


def test_serve_without_a_poem_serves_the_raven() -> None:
    with ServerProcess("fast") as server:
        assert read_to_eof(server.address) == load_poem("raven").data


def test_cannot_listen_names_the_address_and_says_in_use_only_for_eaddrinuse() -> None:
    import errno

    from poetrylab.cli import cannot_listen

    in_use = OSError(errno.EADDRINUSE, "Address already in use")
    assert cannot_listen("127.0.0.1", 9800, in_use) == (
        "cannot listen on 127.0.0.1:9800: address already in use "
        "(pick another --port, or 0 for a free one)"
    )
    denied = OSError(errno.EACCES, "Permission denied")
    assert cannot_listen("0.0.0.0", 98, denied) == "cannot listen on 0.0.0.0:98: Permission denied"


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (what a process imports, begins, keeps)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


# --- every number the command line takes is checked -------------------------------------

BAD_NUMBERS = ["-1", "nan", "inf", "1e400", "many", ""]


def _numeric_options() -> list[tuple[str, str]]:
    from poetrylab.kinds import KINDS, Count, Seconds

    return [
        (name, option.flag)
        for name, kind in KINDS.items()
        for option in kind.options
        if isinstance(option.type, Count | Seconds) and not option.positional
    ]


@pytest.mark.parametrize(("kind", "flag"), _numeric_options())
def test_every_numeric_option_of_every_kind_refuses_nonsense_in_one_line_with_status_two(
    kind: str, flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from poetrylab.cli import parse_args

    for bad in BAD_NUMBERS:
        with pytest.raises(SystemExit) as exited:
            parse_args(["serve", kind, flag, bad])
        assert exited.value.code == 2, (kind, flag, bad)
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"argument {flag}: must be" in err, err


@pytest.mark.parametrize("kind", ["slow", "blocking", "fast", "transform", "tagged", "xmlrpc"])
@pytest.mark.parametrize("port", ["70000", "-1", "65536"])
def test_a_port_out_of_range_is_one_line_and_status_two_for_every_kind(
    kind: str, port: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from poetrylab.cli import parse_args

    with pytest.raises(SystemExit) as exited:
        parse_args(["serve", kind, "--port", port])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        f"poetrylab serve {kind}: error: argument --port: must be a port number from 0 to "
        f"65,535, not {port} (see poetrylab serve {kind} --help)\n"
    )


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_serve_with_a_port_out_of_range_exits_two_without_a_traceback(port: str) -> None:
    result = run_cli(["serve", "slow", "raven", "--port", port], timeout=30)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.count("\n") == 1 and "--port" in result.stderr
    assert "Traceback" not in result.stderr and "OverflowError" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["get", "--timeout", "0", "127.0.0.1:1"],
        ["get", "--timeout", "nan", "127.0.0.1:1"],
        ["get", "127.0.0.1:70000"],
        ["transform", "scan", "--server", "127.0.0.1:1", "--timeout", "-2"],
        ["transform", "a.b", "--server", "127.0.0.1:1"],
        ["serve", "proxy", "--upstream", "127.0.0.1:0"],
        ["serve", "xmlrpc", "--backend", "somewhere"],
    ],
)
def test_the_other_commands_check_their_numbers_and_addresses_too(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from poetrylab.cli import parse_args

    with pytest.raises(SystemExit) as exited:
        parse_args(args)
    assert exited.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_transform_takes_the_file_after_the_options_without_a_monkeypatch() -> None:
    from poetrylab.cli import parse_args

    args = parse_args(["transform", "scan", "--server", "127.0.0.1:9", "poem.txt"])
    assert (args.name, args.file, tuple(args.server)) == ("scan", "poem.txt", ("127.0.0.1", 9))


def test_poetrylab_help_imports_no_twisted_and_no_subcommand_module() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from poetrylab.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])\n"
        "print(sorted(m for m in sys.modules if m.startswith(('twisted', 'poetrylab.'))))\n"
    )
    result = _run_python(code)
    assert result.returncode == 0, result.stderr
    assert eval(result.stdout) == ["poetrylab.cli"], result.stdout


# --- logging: begun in every process, bounded, never blocking -----------------------------


def test_a_cli_process_begins_twisted_logging_so_no_event_keeps_its_factory_alive() -> None:
    code = (
        "import gc, weakref\n"
        "from twisted.internet.protocol import Factory\n"
        "from poetrylab._logging import begin_cli_logging\n"
        "begin_cli_logging()\n"
        "factory = Factory()\n"
        "factory.doStart(); factory.doStop()  # logs 'Starting factory <factory>'\n"
        "alive = weakref.ref(factory)\n"
        "del factory; gc.collect()\n"
        "print(alive() is None)\n"
    )
    result = _run_python(code)
    assert result.stdout.strip() == "True", result.stderr


def test_the_log_handler_drops_and_counts_lines_rather_than_block_on_a_full_stderr() -> None:
    import logging

    from poetrylab._logging import QueueToStderr

    read_end, write_end = os.pipe()
    handler = QueueToStderr(capacity=10, fd=write_end)
    record = logging.LogRecord("t", logging.WARNING, __file__, 1, "x" * 1000, None, None)
    for _ in range(1000):  # far more than the pipe holds: nobody reads it yet
        handler.emit(record)  # returns at once, every time
    assert handler.dropped >= 800
    received = b""
    while b"log lines dropped" not in received:  # now read: the writer goes on, and says so
        ready, _, _ = select.select([read_end], [], [], 10)
        assert ready, "the writer wrote nothing more once the pipe was read"
        received += os.read(read_end, 1 << 20)
    os.close(read_end)
    os.close(write_end)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("kind", ["slow", "fast", "blocking", "transform", "tagged", "xmlrpc"])
def test_sigint_stops_a_server_even_when_its_parent_ignored_sigint(kind: str) -> None:
    # A shell without job control starts background jobs with SIGINT ignored, and a child
    # inherits that; `poetrylab serve` must still stop on SIGINT, as its contract says.
    argv = [sys.executable, "-m", "poetrylab", "serve", kind, *KIND_ARGS.get(kind, [])]
    child = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=_ignore_sigint,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        ready, _, _ = select.select([child.stdout], [], [], 30)
        assert ready, f"poetrylab serve {kind} printed nothing within 30 s"
        assert child.stdout.readline().startswith(b"listening on ")
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=15) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
