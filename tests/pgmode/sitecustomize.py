"""Python runs this at start when tests/pgmode is on PYTHONPATH (``WAIKAN_TEST_STORE=pg``)."""

import waikan_pgmode  # noqa: F401 - maps SQLite stores to PostgreSQL databases
