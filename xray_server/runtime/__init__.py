"""Running the server: settings from the environment, gunicorn's hooks and WSGI entry point,
and a local server (embedded PostgreSQL and gunicorn) for the demo and the tests."""
