"""Every standard install path gives a working ``poetrylab`` and ``twistd poetry``.

Four paths, each into a fresh virtual environment, from a copy of this checkout (so the
repository under test is never what answers by accident):

* ``pip install -e .`` (PEP 660, setuptools' default mode, not ``editable_mode=compat``),
* ``pip install`` of a built wheel,
* ``make install`` (the locked dependencies, hash-checked, then poetrylab with ``--no-deps``),
* Binder: the ``pip`` section of ``environment.yml`` as conda would install it, then ``postBuild``.

Each environment must serve a poem and download it with its own ``poetrylab``, list the
corpus from the installed package data, and find the twistd plugin. To stay fast and
offline, the new environments see the already installed dependencies through a ``.pth``
line (the dependencies are not what is tested: poetrylab's own packaging is), and
poetrylab itself is built with ``--no-build-isolation`` from this environment's
setuptools when ``pyproject.toml``'s build-system accepts it (the locked one does); with
an older one (an environment made otherwise), pip builds in isolation, fetching one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import tomllib
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
POEMS = sorted(p.stem for p in (ROOT / "poetrylab" / "poems").glob("*.txt"))

# Run inside the new environment, from an empty directory: where poetrylab and its corpus
# were imported from, a poem served and downloaded by that environment's own poetrylab,
# and twistd's plugin serving another poem.
CHECK = r"""
import json, re, selectors, subprocess, sys, time
import poetrylab
from poetrylab.corpus import corpus_files, list_poems
from poetrylab.testing import ServerProcess, read_to_eof

with ServerProcess("fast", "raven") as server:
    get = subprocess.run(
        [sys.executable, "-m", "poetrylab", "get", "-q", str(server.address)],
        capture_output=True, text=True, timeout=60,
    )
twistd = subprocess.Popen(
    [sys.executable, "-c", "import sys; from twisted.scripts.twistd import run; run()",
     "-n", "--pidfile=", "--logfile=-", "poetry", "--port", "0", "--fast", "hope"],
    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
)
said, served, deadline = b"", b"", time.monotonic() + 30
with selectors.DefaultSelector() as sel:
    sel.register(twistd.stdout, selectors.EVENT_READ)
    while time.monotonic() < deadline and sel.select(deadline - time.monotonic()):
        chunk = twistd.stdout.read1(4096)
        said += chunk
        port = re.search(rb"PoetryFactory starting on (\d+)", said)
        if port or not chunk:
            break
if port:
    served = read_to_eof(("127.0.0.1", int(port[1])), timeout=30)
twistd.kill()
twistd.wait()
print(json.dumps({
    "module": poetrylab.__file__,
    "corpus": str(corpus_files()),
    "poems": list_poems(),
    "get": [get.returncode, get.stdout, get.stderr],
    "twistd": said.decode(errors="replace")[-2000:],
    "twistd_served": served.decode(),
}))
"""


def _copy_checkout(dest: Path) -> Path:
    """Copy the files git knows about (committed or not, never ignored ones), links as links."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        source = ROOT / name
        if not os.path.lexists(source):
            continue  # deleted in the working tree, not yet committed
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    return dest


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _copy_checkout(tmp_path_factory.mktemp("checkout"))


def _differences_from_the_lock() -> list[str]:
    """Where this environment's packages differ from requirements/lock.txt (this platform)."""
    text = (ROOT / "requirements" / "lock.txt").read_text().replace("\\\n", " ")
    differences = []
    for line in text.splitlines():
        line = re.sub(r"\s--hash=\S+", "", line).strip()
        if not line or line.startswith("#"):
            continue
        pin = Requirement(line)
        if pin.marker is not None and not pin.marker.evaluate():
            continue
        [wanted] = [spec.version for spec in pin.specifier]
        try:
            have = version(pin.name)
        except PackageNotFoundError:
            have = "missing"
        if have != wanted:
            differences.append(f"{pin.name} {have} (lock: {wanted})")
    return differences


@pytest.fixture(scope="module")
def locked_env() -> None:
    """Skip unless this environment is the lock's: the new one reuses its packages."""
    differences = _differences_from_the_lock()
    if differences:
        pytest.skip(
            "this environment is not the lock's, so installing the lock would download it "
            f"(e.g. {', '.join(differences[:3])}): run it from `make test`"
        )


def _new_env(path: Path) -> Path:
    """A virtual environment that sees this one's packages through a .pth line, not a copy.

    It has no pip of its own: ``python -m pip`` there runs this environment's pip, which
    installs into the new environment. Returns its ``bin`` directory.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    bin_dir = path / "bin"
    site = subprocess.run(
        [bin_dir / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    # "zz": read after the install's own .pth, so an editable checkout comes first.
    (Path(site) / "zz-reuse-test-env.pth").write_text("\n".join(sorted(ours)) + "\n")
    return bin_dir


def _run(argv: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, (
        f"{' '.join(map(str, argv))} failed ({result.returncode}):\n"
        f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout + result.stderr


def _env_vars(bin_dir: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["HOME"] = str(home)
    env["JUPYTER_CONFIG_DIR"] = str(home / ".jupyter")
    return env


def _assert_works(bin_dir: Path, installed_under: Path, workdir: Path) -> dict[str, object]:
    """The environment's poetrylab serves, downloads and lists poems; twistd finds the plugin."""
    workdir.mkdir(exist_ok=True)
    listing = _run([bin_dir / "poetrylab", "poems"], cwd=workdir)
    assert [line.split()[0] for line in listing.splitlines()] == POEMS, listing
    report = json.loads(_run([bin_dir / "python", "-c", CHECK], cwd=workdir).splitlines()[-1])
    assert Path(report["module"]).is_relative_to(installed_under), report["module"]
    assert Path(report["corpus"]).is_relative_to(installed_under), report["corpus"]
    assert report["poems"] == POEMS
    status, stdout, stderr = report["get"]
    assert status == 0 and "3710 bytes" in stdout, (stdout, stderr)
    hope = (ROOT / "poetrylab" / "poems" / "hope.txt").read_text(encoding="utf-8")
    assert report["twistd_served"] == hope, f"twistd poetry did not serve: {report['twistd']}"
    return report


def _site_packages(bin_dir: Path) -> Path:
    out = _run([bin_dir / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
               cwd=bin_dir)  # fmt: skip
    return Path(out.strip())


def _build_flags() -> list[str]:
    """``--no-build-isolation`` when this environment has what ``build-system`` requires.

    Offline and fast, from the installed (locked) setuptools; otherwise no flag, and pip
    fetches a build backend that pyproject.toml accepts.
    """
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    for spec in pyproject["build-system"]["requires"]:
        requirement = Requirement(spec)
        try:
            installed = version(requirement.name)
        except PackageNotFoundError:
            return []
        if not requirement.specifier.contains(installed, prereleases=True):
            return []
    return ["--no-build-isolation"]


def test_pip_install_editable_pep_660_finds_the_plugin_and_the_corpus(
    checkout: Path, tmp_path: Path
) -> None:
    bin_dir = _new_env(tmp_path / "env")
    out = _run(
        [bin_dir / "python", "-m", "pip", "install", "--no-deps", *_build_flags(),
         "-e", checkout],
        cwd=tmp_path,
    )  # fmt: skip
    assert "editable_mode" not in out
    pth = list(_site_packages(bin_dir).glob("__editable__.poetrylab-*.pth"))
    assert pth and pth[0].read_text().strip() == str(checkout), "expected a static .pth"
    _assert_works(bin_dir, checkout, tmp_path / "work")


def test_a_built_wheel_installs_every_subpackage_the_corpus_and_the_plugin(
    checkout: Path, tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    out = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", *_build_flags(), "-v",
         "-w", dist, checkout],
        cwd=tmp_path,
    )  # fmt: skip
    assert "would be ignored" not in out, "setuptools warns about undeclared package data"
    [wheel] = dist.glob("poetrylab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(checkout).as_posix() for p in (checkout / "poetrylab").rglob("*.py")}
    assert not sorted(modules - names), f"the wheel lacks {sorted(modules - names)[:5]}"
    assert {f"poetrylab/poems/{p}.txt" for p in POEMS} < names
    assert {"poetrylab/poems/README.md", "twisted/plugins/poetrylab_plugin.py"} < names
    # An __init__.py here would replace Twisted's own twisted.plugins package.
    assert not {"twisted/__init__.py", "twisted/plugins/__init__.py"} & names
    bin_dir = _new_env(tmp_path / "env")
    _run([bin_dir / "python", "-m", "pip", "install", "--no-deps", wheel], cwd=tmp_path)
    site = _site_packages(bin_dir)
    _assert_works(bin_dir, site, tmp_path / "work")


def test_make_install_installs_the_lock_then_poetrylab_without_deps(
    checkout: Path, tmp_path: Path, locked_env: None
) -> None:
    bin_dir = _new_env(tmp_path / "env")
    out = _run(["make", "-C", checkout, "install", f"VENV={tmp_path / 'env'}"], cwd=tmp_path)
    assert "--require-hashes -r requirements/lock.txt" in out
    assert (tmp_path / "env" / ".installed-stamp").is_file()
    kernel = tmp_path / "env" / "share" / "jupyter" / "kernels" / "python3" / "kernel.json"
    assert json.loads(kernel.read_text())["display_name"] == "Python 3 (poetrylab)"
    _assert_works(bin_dir, checkout, tmp_path / "work")
    # Nothing changed: a second make install does nothing.
    again = _run(["make", "-C", checkout, "install", f"VENV={tmp_path / 'env'}"], cwd=tmp_path)
    assert "pip install" not in again


@pytest.fixture(scope="module")
def binder_env(
    checkout: Path, tmp_path_factory: pytest.TempPathFactory, locked_env: None
) -> Iterator[tuple[Path, dict[str, str]]]:
    """What repo2docker does with environment.yml and postBuild, in a fresh environment
    (made once for the tests that use it: it takes several seconds)."""
    root = tmp_path_factory.mktemp("binder")
    bin_dir = _new_env(root / "env")
    home = root / "home"
    home.mkdir()
    env = _env_vars(bin_dir, home)
    spec = yaml.safe_load((checkout / "environment.yml").read_text())
    [pip_section] = [d["pip"] for d in spec["dependencies"] if isinstance(d, dict)]
    # conda writes the pip section to a file beside environment.yml and runs pip there.
    requirements = checkout / "condaenv.test.requirements.txt"
    requirements.write_text("\n".join(pip_section) + "\n")
    try:
        _run(["python", "-m", "pip", "install", "-U", "-r", requirements.name], checkout, env)
    finally:
        requirements.unlink()
    _run(["bash", checkout / "postBuild"], cwd=checkout, env=env)
    yield bin_dir, env


def test_binder_environment_yml_and_postbuild_give_a_working_poetrylab(
    binder_env: tuple[Path, dict[str, str]], checkout: Path, tmp_path: Path
) -> None:
    bin_dir, _ = binder_env
    _assert_works(bin_dir, checkout, tmp_path / "work")


# --- JupyterLab as the course starts it ----------------------------------------------------

TOKEN = "poetrylab-test-token"


@contextlib.contextmanager
def _lab(argv: list[str | Path], cwd: Path, env: dict[str, str]) -> Iterator[str]:
    """Run a JupyterLab command until it answers on /api/status; yield its base URL.

    Fails with JupyterLab's own log when it exits or stays silent for 60 s.
    """
    runtime = Path(env["JUPYTER_RUNTIME_DIR"])
    log = cwd / "lab.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [str(a) for a in argv], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
            stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    info = json.loads((runtime / f"jpserver-{proc.pid}.json").read_text())
                    base = f"http://127.0.0.1:{info['port']}"
                    urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=5).close()
                    break
                except (OSError, ValueError, KeyError):
                    if proc.poll() is not None or time.monotonic() > deadline:
                        tail = log.read_text()[-3000:]
                        raise AssertionError(f"JupyterLab did not start:\n{tail}")
                    time.sleep(0.2)  # polling the runtime file JupyterLab writes when it is up
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _lab_env(tmp_path: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: a fresh HOME in ``tmp_path``) with a runtime dir of its own."""
    env = dict(base) if base is not None else dict(os.environ, HOME=str(tmp_path))
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "runtime")
    env.setdefault("JUPYTER_CONFIG_DIR", str(tmp_path / "config"))
    return env


def _assert_course_lab(base: str, opens: str) -> None:
    """The lab opens the course on notebook 00, with no news pop-up and no update check."""
    page = urllib.request.urlopen(f"{base}/lab?token={TOKEN}", timeout=10).read().decode()
    data = re.search(r'id="jupyter-config-data" type="application/json">(.*?)</script>', page, re.S)
    assert data, "no page config in JupyterLab's page"
    config = json.loads(data[1])
    assert config["news"] == {"disabled": True}, "JupyterLab would fetch news"
    # JupyterLab 4's page ignores news.disabled: only with its announcements plugin off does
    # it not ask "Would you like to get notified about official Jupyter news?".
    assert "@jupyterlab/apputils-extension:announcements" in config["disabledExtensions"], (
        "JupyterLab would ask about news (the course's labconfig is not on its config path)"
    )
    update = urllib.request.urlopen(f"{base}/lab/api/update?token={TOKEN}", timeout=10).read()
    assert json.loads(update) == {"notification": None}
    with urllib.request.urlopen(f"{base}/?token={TOKEN}", timeout=10) as landing:
        assert urllib.parse.urlsplit(landing.geturl()).path == opens


def test_poetrylab_lab_passes_jupyterlab_options_through(tmp_path: Path) -> None:
    env = _lab_env(tmp_path)
    for _attempt in range(3):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        argv = [sys.executable, "-m", "poetrylab", "lab", "--port", str(port), "--no-browser",
                "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}"]  # fmt: skip
        try:
            with _lab(argv, tmp_path, env) as base:
                assert base.endswith(f":{port}"), "--port did not reach JupyterLab"
                _assert_course_lab(base, "/lab/tree/00-welcome.ipynb")
                return
        except AssertionError as failure:
            if "is already in use" not in str(failure):
                raise  # another process took the free port in between: try another one
    pytest.fail("three free ports were taken before JupyterLab could bind them")


def test_poetrylab_lab_help_says_options_go_to_jupyterlab(tmp_path: Path) -> None:
    out = _run([sys.executable, "-m", "poetrylab", "lab", "--help"], cwd=tmp_path)
    assert out.startswith("usage: poetrylab lab [JUPYTERLAB OPTIONS]")
    assert "passed on to it unchanged" in out and "poetrylab lab --port 8899" in out
    assert "--ServerApp.port" in out or "--port" in out.split("JupyterLab's own options follow")[1]


def test_binder_lab_opens_notebook_00_without_news(
    binder_env: tuple[Path, dict[str, str]], checkout: Path, tmp_path: Path
) -> None:
    bin_dir, env = binder_env
    argv = [bin_dir / "python", "-m", "jupyterlab", "--no-browser", "--ServerApp.port=0",
            "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}",
            *(["--allow-root"] if os.geteuid() == 0 else [])]  # fmt: skip
    (tmp_path / "lab").mkdir()
    with _lab(argv, checkout, _lab_env(tmp_path / "lab", env)) as base:
        _assert_course_lab(base, "/lab/tree/notebooks/00-welcome.ipynb")
