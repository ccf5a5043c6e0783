# A Twisted application file: run it with  twistd -ny examples/poetry.tac
# (notebook 14). twistd looks for the module-level name ``application``.
from poetrylab.service import make_application

application = make_application(poem="raven", port=10000, delay=0.1, num_bytes=10)
