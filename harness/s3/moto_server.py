"""moto's S3 server (moto.server.main, same arguments) for cassette's tests.

The one change: werkzeug's request log is written without ANSI colours, so every request is one
plain line in the log, e.g. `127.0.0.1 - - [date] "PUT /cassette/key HTTP/1.1" 200 -`, which
the test fixture counts (cassette_testkit::s3::S3Server::requests).
"""
import logging
import sys

import werkzeug.serving

werkzeug.serving._log_add_style = False
# werkzeug adds its own stderr handler at INFO only if the logger has no level; make it explicit.
logging.getLogger("werkzeug").setLevel(logging.INFO)

from moto.server import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
