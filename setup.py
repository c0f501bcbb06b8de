"""The package list, which setup.cfg cannot say: the demo lives in `demo/` (the design card's
layout) and installs as `xray_demo`, beside the packages found by name. Everything else is in
setup.cfg."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["xray_sdk", "xray_sdk.*", "xray_server", "xray_server.*", "xray_cli", "xray_cli.*"])
    + ["xray_demo"],
    package_dir={"xray_demo": "demo"},
)
