"""The dynamic-sessions data plane: the aiohttp application, its wire modules per api-version,
the operation table and fault injection."""
