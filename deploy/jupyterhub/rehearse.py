"""Rehearse a class on the course's JupyterHub: learners run a notebook at once, measured.

Before a class, run it on the machine that will host the hub: it starts a trial hub on
127.0.0.1 with the course's configuration (jupyterhub_config.py beside this file, plus what
a rehearsal must change: free ports, a folder of its own, a service token, kernels over
Unix sockets), creates the learners through the hub's REST API, starts their servers
together, then has every learner run the notebook in a new kernel of their own server
through the hub's proxy (jupyter_server's REST API and kernel websocket), all at the same
moment, as a class does when the instructor says "run all". It reports each learner's
wall time (kernel start included), the kernel's CPU, the memory of their server and
kernel, whether every output matched the stored one (compared as nbval compares them,
with notebooks/conftest.py and sanitize.cfg), and optionally what an idle kernel and
server cost. Then it stops the hub and everything it started.

    .venv/bin/python deploy/jupyterhub/rehearse.py --learners 8 --notebook 04
    .venv/bin/python deploy/jupyterhub/rehearse.py --learners 1 --notebook 00 --idle 60

tests/test_hub.py drives four learners through notebook 00 with it. It needs
configurable-http-proxy (npm) and the `hub` extra, as the hub does, and psutil (in the
lock). Nothing here is thread-safe: one rehearsal, one asyncio loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import nbformat
import psutil  # type: ignore[import-untyped]  # psutil ships no types
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "jupyterhub_config.py"
CHECKOUT = HERE.parents[1]
COURSE_FOLDER = "poetrylab-course"
"""Where the hub's configuration puts each learner's copy of the course."""

OVERLAY = """\
# The course's hub configuration, and what a rehearsal must change.
load_subconfig({config!r})
c.JupyterHub.bind_url = "http://127.0.0.1:{public}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api}"
c.JupyterHub.services.append({{"name": "rehearsal", "api_token": {token!r}}})
c.JupyterHub.load_roles.append({{
    "name": "rehearsal",
    "scopes": ["admin:users", "admin:servers", "access:servers"],
    "services": ["rehearsal"],
}})
c.JupyterHub.concurrent_spawn_limit = 0  # the rehearsal starts its learners all at once
# Kernels over Unix sockets, in a short folder per learner (a socket's path is at most 107
# bytes): with TCP, jupyter_client picks a free port and the kernel binds it later, and on
# a busy machine another process sometimes takes it in between ("Address already in use").
c.Spawner.args.append("--KernelManager.transport=ipc")
c.Spawner.environment["JUPYTER_RUNTIME_DIR"] = lambda spawner: {runtime!r} + spawner.user.name
# The browser test reads which plugins the lab has from window.jupyterapp.
c.Spawner.args.append("--LabApp.expose_app_in_browser=True")
"""

_ROUTINE = re.compile(r"^\[I |\[ConfigProxy\] .*info|^\s*$")
"""A line of the hub's log that says all is well."""


class RehearsalError(Exception):
    """The hub, a learner's server or a kernel did not do what a class needs; says why."""


def proxy_problem() -> str | None:
    """Why configurable-http-proxy cannot run here, or None when it can."""
    proxy = shutil.which("configurable-http-proxy")
    if proxy is None:
        return (
            "configurable-http-proxy is not installed (npm install -g configurable-http-proxy;"
            " .ci/run does it where npm is available): JupyterHub cannot start without it"
        )
    try:
        done = subprocess.run(
            [proxy, "--version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"configurable-http-proxy does not run: {error}"
    if done.returncode != 0:
        return f"configurable-http-proxy does not run: {(done.stderr or done.stdout)[-500:]}"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _node(data: Any) -> Any:
    """``data`` as nbformat's node, whose keys read as attributes (nbval's functions need it)."""
    return nbformat.from_dict(data)  # type: ignore[no-untyped-call]  # nbformat's is untyped


def _message(raw: bytes) -> dict[str, Any]:
    """A kernel message that jupyter_server sent with its binary buffers, decoded."""
    from jupyter_server.services.kernels.connection.base import deserialize_binary_message

    return dict(deserialize_binary_message(raw))  # type: ignore[no-untyped-call]  # untyped


def listening(port: int) -> bool:
    """Whether anything accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) != errno.ECONNREFUSED


@dataclass
class TrialHub:
    """A JupyterHub on loopback with the course's configuration, started by :meth:`start`.

    ``ports`` and ``started`` collect the ports listened on and the processes started by
    the hub (as seen by :meth:`remember_descendants`), so a caller can check that
    :meth:`stop` left none behind.
    """

    process: subprocess.Popen[bytes]
    url: str
    folder: Path
    log: Path
    token: str
    ports: set[int]
    started: set[int] = field(default_factory=set)

    @classmethod
    def start(cls, folder: Path, timeout: float = 90) -> TrialHub:
        """Start the hub keeping its files in ``folder``; return once its API answers.

        ``folder`` should have a short path (kernels' sockets live under it). Raises
        RehearsalError with the hub's log when it exits or does not answer in
        ``timeout`` seconds; a port taken by another process between picking and binding
        it gets three tries with new ports.
        """
        (folder / "runtime").mkdir(exist_ok=True)
        token = uuid.uuid4().hex
        for attempt in range(3):
            public, hub_port, api = _free_port(), _free_port(), _free_port()
            overlay = folder / "rehearsal_config.py"
            overlay.write_text(OVERLAY.format(
                config=str(CONFIG), public=public, hub=hub_port, api=api, token=token,
                runtime=f"{folder}/runtime/",
            ))  # fmt: skip
            log = folder / f"hub-{attempt}.log"
            env = dict(os.environ, POETRYLAB_HUB_DIR=str(folder))
            with log.open("wb") as sink:
                process = subprocess.Popen(
                    [sys.executable, "-m", "jupyterhub", "-f", str(overlay)],
                    cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink,
                    start_new_session=True,
                )  # fmt: skip
            url = f"http://127.0.0.1:{public}"
            hub = cls(process, url, folder, log, token, {public, hub_port, api})
            deadline = time.monotonic() + timeout
            while process.poll() is None and time.monotonic() < deadline:
                if hub._answers():
                    return hub
                time.sleep(0.25)  # polling the hub's API until it answers
            hub.stop()
            if "already in use" not in hub.log_tail() and "EADDRINUSE" not in hub.log_tail():
                raise RehearsalError(f"JupyterHub did not start in {timeout} s:\n{hub.log_tail()}")
        raise RehearsalError(f"three sets of free ports were taken first:\n{hub.log_tail()}")

    def _answers(self) -> bool:
        import urllib.request

        request = urllib.request.Request(
            f"{self.url}/hub/api/", headers={"Authorization": f"token {self.token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10):
                return True
        except OSError:
            return False

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the hub's log, without its (and its proxy's) routine info lines.

        What is left says what went wrong: warnings, errors, tracebacks, and first the
        critical lines of learners' servers ("Running as root is not recommended...").
        """
        text = self.log.read_text(errors="replace")
        lines = [line for line in text.splitlines() if not _ROUTINE.search(line)]
        tail = "\n".join(lines)[-chars:]
        critical = dict.fromkeys(line[line.find("]") + 1 :] for line in lines if line[:3] == "[C ")
        return "\n".join([*critical, "...", tail]) if critical else tail

    def mentions(self, words: str) -> int:
        """How many times the hub's whole log says ``words``."""
        return self.log.read_text(errors="replace").count(words)

    def descendants(self) -> list[Any]:
        """Every process the hub has started that is still running (psutil.Process)."""
        try:
            return list(psutil.Process(self.process.pid).children(recursive=True))
        except psutil.NoSuchProcess:
            return []

    def remember_descendants(self) -> None:
        """Note every process the hub has started by now, and the ports they listen on."""
        for child in self.descendants():
            with contextlib.suppress(psutil.Error):
                self.started.add(child.pid)
                for conn in child.net_connections(kind="inet"):
                    if conn.status == psutil.CONN_LISTEN:
                        self.ports.add(conn.laddr.port)

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM the hub, which stops the learners' servers, its services and its proxy.

        Raises RehearsalError (after killing its process group) when it is still running
        ``timeout`` seconds later.
        """
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
                raise RehearsalError(
                    f"JupyterHub ignored SIGTERM for {timeout} s:\n{self.log_tail()}"
                )

    def left_running(self, timeout: float = 30) -> list[str]:
        """The processes the hub started that still run ``timeout`` s after it stopped."""
        deadline = time.monotonic() + timeout
        while (alive := _alive(self.started)) and time.monotonic() < deadline:
            time.sleep(0.2)  # the hub waits for its servers; their kernels follow them
        return alive


def _alive(pids: set[int]) -> list[str]:
    alive = []
    for pid in sorted(pids):
        with contextlib.suppress(psutil.NoSuchProcess):
            process = psutil.Process(pid)
            if process.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{pid} {' '.join(process.cmdline())[:120]}")
    return alive


@contextlib.contextmanager
def trial_hub() -> Iterator[TrialHub]:
    """A TrialHub in a fresh folder under /tmp, stopped and removed afterwards.

    Raises RehearsalError after stopping it when it left a process running (they are
    killed) or a port listened on.
    """
    folder = Path(tempfile.mkdtemp(prefix="plhub-", dir="/tmp"))
    hub = TrialHub.start(folder)
    try:
        yield hub
    finally:
        hub.remember_descendants()
        hub.stop()
        left = hub.left_running()
        ports = sorted(p for p in hub.ports if listening(p))
        for line in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(line.split()[0]), signal.SIGKILL)
        shutil.rmtree(folder, ignore_errors=True)
        if left or ports:
            raise RehearsalError(
                "JupyterHub left processes running:\n" + "\n".join(left)
                if left
                else f"ports still listened on after the hub stopped: {ports}"
            )


# --- Learners, through the hub's REST API and proxy ---------------------------------------


class Learners:
    """Asynchronous HTTP to the hub and the learners' servers, as the rehearsal's service."""

    def __init__(self, hub: TrialHub) -> None:
        self.hub = hub
        self.http = AsyncHTTPClient(force_instance=True, max_clients=64)
        self.headers = {"Authorization": f"token {hub.token}"}

    async def api(self, method: str, path: str, body: Any = None, timeout: float = 120) -> Any:
        """``method`` ``path`` (under the hub's URL) with ``body`` as JSON; the reply's JSON.

        Raises RehearsalError with the reply and the hub's log when it is not a success.
        """
        try:
            response = await self.http.fetch(
                self.hub.url + path, method=method, headers=self.headers,
                body=None if method == "GET" else json.dumps(body or {}),
                request_timeout=timeout, follow_redirects=False, allow_nonstandard_methods=True,
            )  # fmt: skip
        except HTTPClientError as error:
            detail = error.response.body.decode(errors="replace") if error.response else ""
            raise RehearsalError(f"{method} {path}: {error}\n{detail}\n{self.hub.log_tail()}")
        return json.loads(response.body) if response.body else None

    async def create(self, names: Sequence[str]) -> None:
        """Create the learners ``names`` (they must not exist yet)."""
        await self.api("POST", "/hub/api/users", {"usernames": list(names)})

    async def start_server(self, name: str, timeout: float = 150) -> float:
        """Start ``name``'s server; once the hub says it is ready, the seconds it took.

        A spawn that failed because another process took its port first is tried again
        (three tries). Raises RehearsalError with the hub's log otherwise.
        """
        started = time.monotonic()
        for _attempt in range(3):
            in_use_before = self.hub.mentions("already in use")
            with contextlib.suppress(RehearsalError):  # a spawn that failed at once: below
                await self.api("POST", f"/hub/api/users/{name}/server")
            while time.monotonic() - started < timeout:
                server = (await self.api("GET", f"/hub/api/users/{name}"))["servers"].get("")
                if server and server["ready"]:
                    return time.monotonic() - started
                if not server:
                    break  # the spawn failed: the hub dropped the server
                await asyncio.sleep(0.25)  # polling the hub's record of the server
            else:
                raise RehearsalError(
                    f"{name}'s server not ready in {timeout} s:\n{self.hub.log_tail()}"
                )
            if self.hub.mentions("already in use") == in_use_before:
                raise RehearsalError(f"{name}'s server failed to start:\n{self.hub.log_tail()}")
        raise RehearsalError(f"{name}'s server failed three times:\n{self.hub.log_tail()}")

    async def stop_server(self, name: str) -> None:
        await self.api("DELETE", f"/hub/api/users/{name}/server")

    async def read_notebook(self, name: str, notebook: str) -> Any:
        """``notebook`` as it is in ``name``'s copy of the course (nbformat node)."""
        path = f"/user/{name}/api/contents/{COURSE_FOLDER}/{notebook}"
        return _node((await self.api("GET", path))["content"])

    async def open_kernel(self, name: str, notebook: str) -> Kernel:
        """A new kernel for ``name``'s copy of ``notebook``, and its websocket.

        As JupyterLab opens a notebook: a session for it, so the kernel works in the
        notebook's folder (where notebook 17 finds data/).
        """
        session = await self.api("POST", f"/user/{name}/api/sessions", {
            "path": f"{COURSE_FOLDER}/{notebook}", "type": "notebook", "name": notebook,
            "kernel": {"name": "python3"},
        })  # fmt: skip
        kernel_id = session["kernel"]["id"]
        channels = f"/user/{name}/api/kernels/{kernel_id}/channels"
        request = HTTPRequest(self.hub.url.replace("http", "ws", 1) + channels,
                              headers=self.headers, request_timeout=120)  # fmt: skip
        return Kernel(name, kernel_id, session["id"], await websocket_connect(request))

    async def close_kernel(self, kernel: Kernel) -> None:
        """Close ``kernel``'s websocket and shut it down (its session ends with it)."""
        kernel.websocket.close()
        await self.api("DELETE", f"/user/{kernel.learner}/api/sessions/{kernel.session_id}")

    def server_process(self, name: str) -> Any:
        """``name``'s single-user server process (psutil.Process)."""
        for process in self.hub.descendants():
            with contextlib.suppress(psutil.Error):
                if process.environ().get(
                    "JUPYTERHUB_USER"
                ) == name and "jupyterhub-singleuser" in " ".join(process.cmdline()):
                    return process
        raise RehearsalError(f"no server process found for {name}")

    def kernel_process(self, kernel: Kernel) -> Any:
        """``kernel``'s process (psutil.Process): the one started with its connection file."""
        for process in self.server_process(kernel.learner).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if any(kernel.id in arg for arg in process.cmdline()):
                    return process
        raise RehearsalError(f"no process found for {kernel.learner}'s kernel {kernel.id}")


@dataclass
class Kernel:
    """A kernel of a learner's server and the websocket its messages go through."""

    learner: str
    id: str
    session_id: str
    websocket: WebSocketClientConnection
    session: str = field(default_factory=lambda: uuid.uuid4().hex)

    async def run(self, code: str, timeout: float = 120) -> list[dict[str, Any]]:
        """Run ``code``; its outputs as nbval records them (stream, data, error).

        Raises RehearsalError when the kernel is not done in ``timeout`` seconds or its
        websocket closes.
        """
        msg_id = uuid.uuid4().hex
        await self.websocket.write_message(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": self.session,
                       "username": self.learner, "version": "5.3",
                       "date": datetime.now(UTC).isoformat()},
            "parent_header": {}, "metadata": {}, "buffers": [], "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": True,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        }))  # fmt: skip
        outputs: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                raw = await asyncio.wait_for(
                    self.websocket.read_message(), deadline - time.monotonic()
                )
            except TimeoutError:
                raise RehearsalError(
                    f"{self.learner}: a cell still running after {timeout} s:\n{code}"
                )
            if raw is None:
                raise RehearsalError(f"{self.learner}: the kernel's websocket closed:\n{code}")
            # A message with binary buffers (a widget's, say) comes as bytes.
            msg = _message(raw) if isinstance(raw, bytes) else json.loads(raw)
            if msg["parent_header"].get("msg_id") != msg_id or msg["channel"] != "iopub":
                continue
            kind, content = msg["header"]["msg_type"], msg["content"]
            if kind == "status" and content["execution_state"] == "idle":
                return outputs
            if kind == "stream":
                outputs.append(
                    {"output_type": kind, "name": content["name"], "text": content["text"]}
                )
            elif kind in ("display_data", "execute_result"):
                outputs.append(
                    {"output_type": kind, "data": content["data"], "metadata": content["metadata"]}
                )
            elif kind == "error":
                outputs.append({"output_type": kind, **content})


# --- Outputs checked as nbval checks them -------------------------------------------------


def _course_conftest() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "course_conftest", CHECKOUT / "notebooks" / "conftest.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def nbval_rules() -> tuple[tuple[str, ...], list[tuple[str, str]]]:
    """What nbval leaves out of a comparison in this course, and the course's sanitizers."""
    from nbval.plugin import get_sanitize_patterns  # type: ignore[import-untyped]  # no types

    # nbval's own list (IPyNbFile.skip_compare, without --nbdime), then the course's.
    skip = ("metadata", "traceback", "prompt_number", "output_type", "name", "execution_count",
            "application/vnd.jupyter.widget-view+json", "image/png", "image/jpeg",
            *_course_conftest().NOT_COMPARED)  # fmt: skip
    patterns = get_sanitize_patterns((CHECKOUT / "notebooks" / "sanitize.cfg").read_text())
    return skip, list(patterns)


def comparable(
    outputs: list[Any], skip: tuple[str, ...], patterns: list[tuple[str, str]]
) -> dict[str, list[Any]]:
    """Outputs as nbval compares them: streams joined, keys flattened, values sanitized."""
    from nbval.plugin import coalesce_streams, transform_streams_for_comparison

    def sanitize(value: Any) -> Any:
        if isinstance(value, str):
            for regex, replace in patterns:
                value = re.sub(regex, replace, value)
        return value

    flat: dict[str, list[Any]] = defaultdict(list)
    nodes = coalesce_streams([_node(o) for o in outputs])
    for output in transform_streams_for_comparison(nodes):
        for key, value in output.items():
            if key == "data":
                for mime, data in value.items():
                    if mime not in skip:
                        flat[mime].append(sanitize(data))
            elif key not in skip:
                flat[key].append(sanitize(value))
    return dict(flat)


def cell_options(cell: Any) -> dict[str, bool]:
    """nbval's options for ``cell``, from its markers and tags (strict: outputs checked)."""
    from nbval.plugin import find_comment_markers, find_metadata_tags

    options: dict[str, bool] = defaultdict(bool, find_metadata_tags(cell.metadata))
    options.update(find_comment_markers(cell.source))
    options.setdefault("check", True)
    return options


def differences(learner: str, stored: Any, ran: list[list[dict[str, Any]]]) -> list[str]:
    """Where the fresh outputs differ from the stored ones, cell by cell, as nbval says."""
    skip, patterns = nbval_rules()
    problems = []
    code = [cell for cell in stored.cells if cell.cell_type == "code"]
    for number, (cell, outputs) in enumerate(zip(code, ran, strict=True)):
        options = cell_options(cell)
        errors = [o for o in outputs if o["output_type"] == "error"]
        if errors and not options["check_exception"]:
            problems.append(
                f"{learner}, cell {number}: {errors[0]['ename']}: {errors[0]['evalue']}"
            )
        elif options["check"] and not options["skip"] and cell.execution_count is not None:
            want, got = (
                comparable(cell.outputs, skip, patterns),
                comparable(outputs, skip, patterns),
            )
            if want != got:
                problems.append(f"{learner}, cell {number} ({cell.source.splitlines()[0]}):\n"
                                f"  stored: {want}\n  fresh:  {got}")  # fmt: skip
    return problems


# --- A class running a notebook together --------------------------------------------------


@dataclass
class LearnerRun:
    """What one learner's run of a notebook took, and what differed from the stored one."""

    name: str
    spawn_seconds: float = 0.0
    kernel_start_seconds: float = 0.0
    wall_seconds: float = 0.0
    kernel_cpu_seconds: float = 0.0
    server_cpu_seconds: float = 0.0
    server_cpu_before: float = 0.0  # the server's CPU so far: its start-up, in round one
    server_uss: int = 0
    kernel_uss: int = 0
    server_rss: int = 0
    kernel_rss: int = 0
    idle_kernel_cpu: float | None = None
    idle_server_cpu: float | None = None
    problems: list[str] = field(default_factory=list)
    default_timeout: str = ""


def _cpu(process: Any) -> float:
    times = process.cpu_times()
    return float(times.user + times.system + times.children_user + times.children_system)


async def run_notebook(learners: Learners, run: LearnerRun, notebook: str, idle: float = 0) -> None:
    """``run.name`` runs their own copy of ``notebook`` in a new kernel; measured into ``run``.

    The wall time counts from asking for the kernel to the last cell done, as a learner
    clicking "Restart and run all" waits. With ``idle`` > 0 the kernel then sits idle
    that many seconds and the CPU it and the server use meanwhile is measured.
    """
    stored = await learners.read_notebook(run.name, notebook)
    server = learners.server_process(run.name)
    server_cpu = run.server_cpu_before = _cpu(server)
    started = time.monotonic()
    kernel = await learners.open_kernel(run.name, notebook)
    try:
        await kernel.run("pass")  # the kernel answers: it has started
        run.kernel_start_seconds = time.monotonic() - started
        ran = []
        for cell in stored.cells:
            if cell.cell_type == "code":
                ran.append([] if cell_options(cell)["skip"] else await kernel.run(cell.source))
        run.wall_seconds = time.monotonic() - started
        process = learners.kernel_process(kernel)
        run.kernel_cpu_seconds = _cpu(process)
        run.server_cpu_seconds = _cpu(server) - server_cpu
        for target, prefix in ((process, "kernel"), (server, "server")):
            memory = target.memory_full_info()
            setattr(run, f"{prefix}_uss", memory.uss)
            setattr(run, f"{prefix}_rss", memory.rss)
        run.problems = differences(run.name, stored, ran)
        [probe] = await kernel.run("from poetrylab import runtime\nprint(runtime.DEFAULT_TIMEOUT)")
        run.default_timeout = str(probe.get("text", probe)).strip()
        if idle > 0:
            kernel_before, server_before = _cpu(process), _cpu(server)
            await asyncio.sleep(idle)  # measuring what an idle kernel costs over `idle` s
            run.idle_kernel_cpu = (_cpu(process) - kernel_before) / idle
            run.idle_server_cpu = (_cpu(server) - server_before) / idle
    finally:
        await learners.close_kernel(kernel)


async def a_class_runs(hub: TrialHub, names: Sequence[str], notebook: str, repeats: int = 1,
                       idle: float = 0) -> list[list[LearnerRun]]:  # fmt: skip
    """Learners ``names`` start their servers together, then run ``notebook`` at once.

    ``repeats`` times, each time in new kernels; returns each round's runs. The servers
    are stopped afterwards.
    """
    learners = Learners(hub)
    try:
        await learners.create(names)
        spawned = await asyncio.gather(*(learners.start_server(name) for name in names))
        rounds = []
        for _round in range(repeats):
            runs = [LearnerRun(name, spawn) for name, spawn in zip(names, spawned, strict=True)]
            await asyncio.gather(*(run_notebook(learners, run, notebook, idle) for run in runs))
            hub.remember_descendants()
            rounds.append(runs)
        await asyncio.gather(*(learners.stop_server(name) for name in names))
        return rounds
    finally:
        learners.http.close()


def _report(
    rounds: list[list[LearnerRun]], notebook: str, load: tuple[float, ...], idle: float
) -> str:
    """The rehearsal's figures, a line per learner and round, then the medians."""
    runs = [run for runs in rounds for run in runs]
    mb = 1024 * 1024
    lines = [
        f"{len(rounds[0])} learner(s) ran {notebook} at once, {len(rounds)} time(s); "
        f"load average before: {load[0]:.2f} on {os.cpu_count()} CPUs",
        f"  {'learner':12} {'spawn':>7} {'kernel start':>13} {'wall':>7} {'kernel CPU':>11} "
        f"{'server CPU':>11} {'server USS/RSS':>15} {'kernel USS/RSS':>15}",
    ]
    for run in runs:
        lines.append(
            f"  {run.name:12} {run.spawn_seconds:6.1f}s {run.kernel_start_seconds:12.1f}s "
            f"{run.wall_seconds:6.1f}s {run.kernel_cpu_seconds:10.2f}s "
            f"{run.server_cpu_seconds:10.2f}s "
            f"{run.server_uss / mb:7.0f}/{run.server_rss / mb:.0f} MB "
            f"{run.kernel_uss / mb:7.0f}/{run.kernel_rss / mb:.0f} MB"
        )
    walls = [run.wall_seconds for run in runs]
    spawn_cpu = statistics.median(run.server_cpu_before for run in rounds[0])
    per_learner = [(run.server_uss + run.kernel_uss) / mb for run in runs]
    lines.append(
        f"median wall {statistics.median(walls):.1f} s (max {max(walls):.1f}); CPU a copy: "
        f"kernel {statistics.median(r.kernel_cpu_seconds for r in runs):.2f} s, its server "
        f"{statistics.median(r.server_cpu_seconds for r in runs):.2f} s; a learner's server "
        f"and kernel: {statistics.median(per_learner):.0f} MB of their own (USS); a server "
        f"took {spawn_cpu:.2f} s of CPU to start"
    )
    if idle:
        tick = 1 / os.sysconf("SC_CLK_TCK") / idle  # one tick of the CPU clock, as a share
        kernel = statistics.median(r.idle_kernel_cpu or 0 for r in runs)
        server = statistics.median(r.idle_server_cpu or 0 for r in runs)
        lines.append(
            f"idle {idle:.0f} s: kernel {kernel:.3%} of a core, server {server:.3%} "
            f"(the CPU clock counts in steps of {tick:.3%} here)"
        )
    problems = [p for run in runs for p in run.problems]
    lines.append(
        "every output as stored" if not problems else "\n".join(["OUTPUTS DIFFER:", *problems])
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a rehearsal from the command line; exit status 1 when an output differed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=8, help="how many (default 8)")
    parser.add_argument("--notebook", default="04", help="its number or file name (default 04)")
    parser.add_argument("--repeats", type=int, default=1, help="rounds, new kernels each time")
    parser.add_argument("--idle", type=float, default=0, help="then measure N idle seconds")
    args = parser.parse_args(argv)
    matches = sorted((CHECKOUT / "notebooks").glob(f"{args.notebook}*.ipynb"))
    if not matches or args.learners < 1 or args.repeats < 1 or args.idle < 0:
        parser.error(f"no notebook {args.notebook!r}, or a count below 1")
    if (problem := proxy_problem()) is not None:
        parser.exit(2, f"{problem}\n")
    names = [f"learner-{n}" for n in range(1, args.learners + 1)]
    load = os.getloadavg()
    with trial_hub() as hub:
        rounds = asyncio.run(a_class_runs(hub, names, matches[0].name, args.repeats, args.idle))
    print(_report(rounds, matches[0].name, load, args.idle))
    return 1 if any(run.problems for runs in rounds for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
