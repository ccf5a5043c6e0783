"""JupyterHub for a class taking the poetrylab course, on one machine.

Every learner logs in to one JupyterHub and gets a JupyterLab of their own, opened on
notebook 00 of their own copy of the course. Run it from the course's environment (the
one `make install` builds: it has the `hub` extra, so `jupyterhub-singleuser` runs beside
poetrylab), with configurable-http-proxy installed (`npm install -g
configurable-http-proxy`):

    cd /srv/poetrylab-hub     # where the hub keeps its database and the learners' homes
    POETRYLAB=/path/to/poetrylab
    $POETRYLAB/.venv/bin/jupyterhub -f $POETRYLAB/deploy/jupyterhub/jupyterhub_config.py

It listens on every interface, port 8000 (`c.JupyterHub.bind_url` below). The README's
"A class on one JupyterHub" section gives this machine's measured figures, what to size
for 30 learners and how the same settings read as Zero to JupyterHub's Helm values.

As shipped it is a trial: anyone may log in under any name (DummyAuthenticator) and every
learner's server runs as the hub's own user with a home folder under ``homes/``
(SimpleLocalProcessSpawner, which JupyterHub says is for testing only: learners are not
isolated from one another). For a real class change the two lines under "Who may log
in". Two environment variables move its folders: POETRYLAB_HUB_DIR (the hub's database,
cookie secret and the trial's homes; default the folder the hub starts in) and
POETRYLAB_COURSE (the notebooks copied to each learner; default this checkout's
notebooks/). tests/test_hub.py starts this file with four learners on loopback.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import sys
from pathlib import Path
from typing import Any

from jupyterhub.spawner import (  # type: ignore[import-untyped]  # JupyterHub ships no types
    LocalProcessSpawner,
    SimpleLocalProcessSpawner,
)

from poetrylab.cli import LAB_CONFIG_DIR, LAB_DEFAULTS

# JupyterHub's config loader puts get_config() in this file's namespace.
c: Any = get_config()  # type: ignore[name-defined]  # noqa: F821

HUB_DIR = Path(os.environ.get("POETRYLAB_HUB_DIR") or Path.cwd()).resolve()
COURSE = Path(
    os.environ.get("POETRYLAB_COURSE") or Path(__file__).resolve().parents[2] / "notebooks"
)
COURSE_FOLDER = "poetrylab-course"
"""The folder in each learner's home that holds their copy of the course."""

# The environment this hub runs in is the course's: poetrylab imports above, and
# jupyterhub-singleuser (the `hub` extra) starts each learner's server from it.
SINGLEUSER = Path(sys.executable).parent / "jupyterhub-singleuser"
if not SINGLEUSER.is_file():
    raise SystemExit(
        f"jupyterhub-singleuser is not in the course's environment ({sys.prefix}): "
        "install the hub extra there (`make install`, or `pip install -e '.[hub]'`)"
    )
if not (COURSE / "00-welcome.ipynb").is_file():
    raise SystemExit(
        f"no course notebooks in {COURSE}: set POETRYLAB_COURSE to the notebooks/ folder "
        "of a poetrylab checkout"
    )

# --- Who may log in --------------------------------------------------------------------
# A trial: any name, any password. For a real class change these two lines, e.g.
#   c.JupyterHub.authenticator_class = "shared-password"  # one password for the class:
#   c.SharedPasswordAuthenticator.user_password = "..."   # (8 characters or more)
# or "pam" (the machine's own accounts) or an OAuthenticator ("github", "generic-oauth":
# pip install oauthenticator); and with real accounts run each learner's server as them:
#   c.JupyterHub.spawner_class = "localprocess"  (the hub then runs as root)
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.spawner_class = "simple"
c.Authenticator.admin_users = {"instructor"}  # in the trial, whoever logs in by that name
c.SimpleLocalProcessSpawner.home_dir_template = str(HUB_DIR / "homes" / "{username}")

c.JupyterHub.bind_url = "http://:8000"
c.JupyterHub.db_url = f"sqlite:///{HUB_DIR / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(HUB_DIR / "jupyterhub_cookie_secret")

# --- Each learner's server -------------------------------------------------------------
c.Spawner.cmd = [str(SINGLEUSER)]
c.Spawner.default_url = f"/lab/tree/{COURSE_FOLDER}/00-welcome.ipynb"
c.Spawner.args = [
    *LAB_DEFAULTS,  # as `poetrylab lab`: no news fetched, no update check
    # Kernels nobody has run a cell in for 20 minutes are shut down, even with their
    # notebook still open: JupyterLab keeps a kernel (110-210 MB, measured) for every
    # notebook opened, six notebooks in that is ~0.9 GB a learner. A culled notebook
    # shows "No Kernel"; running it again from the top takes seconds.
    "--MappingKernelManager.cull_idle_timeout=1200",
    "--MappingKernelManager.cull_interval=60",
    "--MappingKernelManager.cull_connected=True",
    "--MappingKernelManager.cull_busy=False",
]
if os.geteuid() == 0:
    # The trial's servers run as the hub's user: as root, jupyter-server refuses to start
    # without this, and every spawn fails behind a 500 InvalidStateError and a "server
    # never showed up" two minutes later. A server run as a learner's own account
    # (localprocess, systemd, Kubernetes) is not root and is not affected by it.
    c.Spawner.args.append("--allow-root")
c.Spawner.environment = {
    # Every wait in the course's runtime allows 3x its usual time (30 s, not 10): a class
    # running the same cell at once makes each kernel slower (README: K=8 in lockstep).
    "POETRYLAB_TIMEOUT_SCALE": "3",
    # JupyterLab's "Would you like to get notified about official Jupyter news?" is
    # turned off by the course's page configuration, as in `poetrylab lab`.
    "JUPYTER_CONFIG_PATH": str(LAB_CONFIG_DIR),
}
# A learner's server and its kernels: the server and one kernel hold ~0.25 GB (measured:
# README), a kernel 0.1-0.2 GB more for each notebook open until the culler frees it.
# LocalProcessSpawner (and so the trial's spawner) does NOT enforce these: it only hands
# them to the server as MEM_LIMIT and CPU_LIMIT. SystemdSpawner (The Littlest JupyterHub)
# and KubeSpawner (Zero to JupyterHub) enforce both.
c.Spawner.mem_limit = "1G"
c.Spawner.cpu_limit = 1.0

# --- A class logging in at once --------------------------------------------------------
# A server takes ~2.3 s of CPU to start (measured); ten at a time keep a 2-core machine
# busy for ~12 s. The eleventh learner is asked (HTTP 429) to try again in 30-60 s.
c.JupyterHub.concurrent_spawn_limit = 10
c.JupyterHub.active_server_limit = 40
c.Spawner.start_timeout = 120  # seconds for the server's process to start
c.Spawner.http_timeout = 120  # seconds for it to answer once started (busy machine)

# --- Servers nobody uses ---------------------------------------------------------------
# jupyterhub-idle-culler stops a learner's whole server after an hour without activity
# (their files stay; logging in again starts it anew).
c.JupyterHub.services = [
    {
        "name": "idle-culler",
        "command": [
            sys.executable,
            "-m",
            "jupyterhub_idle_culler",
            "--timeout=3600",
            "--cull-every=300",
        ],
    }
]
c.JupyterHub.load_roles = [
    {
        "name": "idle-culler",
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": ["idle-culler"],
    }
]


# --- Each learner's own copy of the course ---------------------------------------------
def course_files(course: Path) -> list[Path]:
    """The course a learner gets: every notebook in ``course`` and what they read (data/).

    The checkout's test files (conftest.py, sanitize.cfg) and the scripts notebooks write
    when they run are left out.
    """
    data = sorted(p for p in (course / "data").rglob("*") if p.is_file())
    return sorted(course.glob("*.ipynb")) + [
        p for p in data if ".ipynb_checkpoints" not in p.relative_to(course).parts
    ]


def copy_course(course: Path, target: Path, owner: tuple[int, int] | None = None) -> list[Path]:
    """Copy the course into ``target``, leaving every file the learner already has alone.

    Returns the files copied (none once the learner has them all; a notebook added to
    the course later arrives at their next start). ``owner`` (uid, gid) is given the new
    folders and files when the hub runs as root for learners with accounts of their own.
    Raises OSError when ``target`` cannot be written.
    """
    copied = []
    for source in course_files(course):
        destination = target / source.relative_to(course)
        if destination.exists():
            continue
        new_folders = [
            p for p in (destination.parent, *destination.parent.parents) if not p.exists()
        ]
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)
        copied.append(destination)
        if owner is not None:
            for path in [destination, *new_folders]:
                os.chown(path, *owner)
    return copied


def learner_home(spawner: Any) -> tuple[Path, tuple[int, int] | None]:
    """Where ``spawner``'s learner lives, and the (uid, gid) to own their files (or None).

    The trial's spawner names the home itself and runs as the hub's user; with
    LocalProcessSpawner the learner is an account of this machine. Raises KeyError when
    that account does not exist.
    """
    if isinstance(spawner, SimpleLocalProcessSpawner):
        return Path(spawner.home_dir), None
    account = pwd.getpwnam(spawner.user.name)
    return Path(account.pw_dir), (account.pw_uid, account.pw_gid)


def give_the_learner_the_course(spawner: Any) -> None:
    """Before a learner's server starts: copy into their home what of the course they lack."""
    if not isinstance(spawner, LocalProcessSpawner):
        logging.getLogger("poetrylab.hub").warning(
            "%s does not run servers on this machine: give learners the course another way"
            " (Zero to JupyterHub: the README's Helm values copy it at start)",
            type(spawner).__name__,
        )
        return
    home, owner = learner_home(spawner)
    copied = copy_course(COURSE, home / COURSE_FOLDER, owner)
    spawner.log.info("%s: %d course files copied to %s", spawner.user.name, len(copied), home)


c.Spawner.pre_spawn_hook = give_the_learner_the_course
