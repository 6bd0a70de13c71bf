"""The programs behind ``tools/*.py``: one module per tool, each with
``parse_args(argv)`` and ``main(argv=None)`` (``argv`` without the program
name; ``None`` reads ``sys.argv``). The scripts in ``tools/`` only call
``main``, so tests import these modules and the command lines stay those
of the scripts.

Submodules are not imported here: each pulls in its own part of the stack.
"""
