"""Model bundle layer: the image-input contract, the bundle format, the runtimes and CAM math.

Imports neither ``training`` nor ``desktop`` (enforced by import-linter).
Submodules import their heavy dependencies lazily so that ``import export``
is cheap.
"""
