"""The WSGI entry point for gunicorn: `xray_server.runtime.wsgi:app`."""

import logging

from xray_server.web.app import create_app

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
app = create_app()
