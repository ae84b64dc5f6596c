"""``rtface dashboard``: one web page showing a running engine live (pip install 'rtface[dashboard]').

- :mod:`rtface.dashboard.view`: pure logic, messages and alert items -> the page's state (JSON-able dicts).
- :mod:`rtface.dashboard.bridge`: two threads that own the ZeroMQ sockets (stream subscriber, alert client) and
  feed the view; acknowledgements go through the alert thread.
- :mod:`rtface.dashboard.server`: the Starlette app (token, page, WebSocket with drop-to-latest per browser).
- :mod:`rtface.dashboard.cli`: the command.
"""
