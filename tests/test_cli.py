"""The CLI contract, end to end: real `poetrylab` processes on loopback, signals, bad input."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
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


def _wait_for_port(proc: subprocess.Popen[str]) -> int:
    assert proc.stdout is not None
    for _ in range(200):
        line = proc.stdout.readline()
        if not line:
            break
        match = re.search(r"PoetryFactory starting on (\d+)", line)
        if match:
            return int(match[1])
    proc.kill()
    raise AssertionError("twistd never said it was listening")


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
