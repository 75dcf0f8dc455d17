"""The Azure Container Apps Sandboxes data plane (``{g}/sandboxes/...``) over the Sandboxes
runtime (``local/runtime/sandboxes/``): routes (``routes``), handlers (``handlers``), one wire
module per api-version (``wire/``), errors (``errors``) and the command-output WebSocket
(``stream``). ``LocalSessionsServer`` serves it at
``/subscriptions/{sub}/resourceGroups/{rg}/sandboxGroups/{group}/...``."""
