"""Hosting: the listener (bind, TLS), the server that holds pools (``LocalSessionsServer``; a
``LocalSessionPool`` is one with a pool of its own), the hosted pools, the pool-host interface
the CLI uses (``host.py``) and the ARM management plane (``arm/``)."""
