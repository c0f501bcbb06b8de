"""The `xray` command as installed without extras: one line naming the extra, never a traceback.
The missing packages are made unimportable in a fresh interpreter (`sys.modules[name] = None`)."""

import subprocess
import sys


def xray(*args, hide=()):
    code = (
        "import sys\n"
        + "".join(f"sys.modules[{name!r}] = None\n" for name in hide)
        + "sys.argv = ['xray', *sys.argv[1:]]\nfrom xray_cli import main\nmain()\n"
    )
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)


def test_without_click_the_command_names_the_cli_extra():
    done = xray("runs", hide=("click",))
    assert done.returncode == 1, done
    assert "pip install 'xray-decisions[cli]'" in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_with_the_cli_extra_only_reading_works_and_serving_names_the_server_extra():
    server_modules = ("flask", "gunicorn", "psycopg", "psycopg_pool", "marshmallow")
    done = xray("runs", "--url", "http://127.0.0.1:9", hide=server_modules)
    assert done.returncode == 1 and "cannot reach X-Ray" in done.stderr, done.stderr
    for command in ("serve", "migrate", "gc", "demo"):
        done = xray(command, hide=server_modules)
        assert done.returncode == 1, (command, done)
        assert "needs the server extra" in done.stderr and "Traceback" not in done.stderr, (command, done.stderr)
