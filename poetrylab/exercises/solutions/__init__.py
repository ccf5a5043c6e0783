"""Model solutions and wrong answers, one module per notebook, for the tests (and the stuck).

Each ``nbNN`` module defines ``SOLUTIONS: dict[str, Answers]`` keyed by check name: the
model solution, the wrong answers the check must catch (the notebook's starter among
them where it is a function or class), and other right answers it must accept. They are
written the way the notebook's cells are, with type hints.
"""
