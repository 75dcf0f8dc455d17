"""Hosting: the listener (bind, TLS), the pools it hosts and the server that holds them, and the
ARM management plane."""
