"""The factory signing service: ``matter-pki serve``, DACs over mutually authenticated HTTPS.

Modules: ``tls`` (the home's service CA, server and station certificates), ``stations`` (station
registry and daily quotas, SQLite), ``engine`` (the one bridge to the local CA's issuing path),
``batcher`` (groups concurrent requests into batches on one signing thread), ``problems`` (RFC 9457
problem details and the HTTP status of every error code), ``app`` (the Starlette application),
``protocol`` (the uvicorn connection: client certificate into the request scope, header timeout,
connection limit), ``metrics`` (Prometheus), ``logs`` (JSON log lines), ``server`` (start-up,
secrets, graceful shutdown). The API is described by ``openapi.json`` (served at ``/v1/openapi.json``).
"""

from __future__ import annotations
