"""The MCP client tests need an MCP SDK that the main environment does not install: AutoGen's
McpWorkbench needs ``mcp`` 1.x, the official SDK 2.x client and Agent Framework need ``mcp`` 2.x.
``nox -s mcp_sdk`` and ``nox -s mcp_autogen`` run them, each in an environment where its client
works; CI runs both sessions."""
