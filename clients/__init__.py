"""Tools that use the service from outside, over HTTP: python -m clients.demo

The demo, the accuracy-per-upload-style CLI, the `bentoml serve` process helper and
the upload-style renderers. Not part of the bento: they import `core`, and the demo
`load_tests`' command line, never `service`.
"""
