"""`python -m xray_server.cli`: the `xray` command without its console script."""
from . import main

main()
