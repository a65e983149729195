"""Child programs of the benchmarks, each run as ``python -m benchmarks.children.NAME ARGS``.

Each prints one JSON line of figures on stdout; a run that does not finish exits
with status 3 and prints no figure. The GUI programs keep ``main()`` behind the
``__main__`` guard: the app's Grad-CAM child is spawned and re-imports the
program's module, and must not start a second window.
"""
