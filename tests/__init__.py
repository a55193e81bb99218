"""The test suite as a regular package.

Without this file ``tests`` is a namespace package, and a regular package named ``tests``
anywhere on ``sys.path`` wins over it: iterative-stratification installs one into
site-packages. Processes started with ``spawn`` (the two-process DDP and sharded-build tests)
then fail to unpickle their worker function (``No module named 'tests.features'``).
"""
