"""Wire formats of the local pool: one module per contract (``legacy``, ``current``).

The runtime hands back api-version-free results (``local/runtime/outcome.py``); these modules parse the
requests and emit the exact response shapes of the api-version a request named.
"""
