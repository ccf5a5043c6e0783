"""Model solutions and wrong answers, one module per notebook, for the tests (and the stuck).

Each ``nbNN`` module defines ``SOLUTIONS: dict[str, Answers]`` keyed by check name.
"""
