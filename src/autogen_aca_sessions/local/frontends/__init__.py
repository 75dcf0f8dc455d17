"""The local server's frontends: the wire protocols (dynamic-sessions data plane, MCP) over the
runtime, with their authentication and access log."""
