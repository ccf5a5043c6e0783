"""twistd plugin: ``twistd -n poetry [options] POEM`` serves a poem (poetrylab.service).

Twisted's plugin system scans ``twisted/plugins/`` directories on ``sys.path``; this file
names the module lazily so ``twistd --help`` stays fast.
"""

from twisted.application.service import ServiceMaker

poetry = ServiceMaker(
    "poetrylab poetry server",
    "poetrylab.service",
    "Serve a poem over the poetry protocol, slowly (or --fast).",
    "poetry",
)
