"""`python -m xray_cli`: the `xray` command without its console script."""

from xray_cli import main

main()
