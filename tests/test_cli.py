"""The `xray` command."""
from click.testing import CliRunner

from xray_server.cli import main


def test_help_lists_the_commands():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "serve" in result.output and "migrate" in result.output


def test_migrate_applies_the_schema(pg_url):
    result = CliRunner().invoke(main, ["migrate"], env={"XRAY_DATABASE_URL": pg_url})
    assert result.exit_code == 0, result.output
    assert "schema at version 1" in result.output


def test_migrate_without_a_database_says_what_to_do():
    result = CliRunner().invoke(main, ["migrate"], env={"XRAY_DATABASE_URL": ""})
    assert result.exit_code == 2
    assert "XRAY_DATABASE_URL is not set" in result.output
