"""Configuration comes from XRAY_* variables, and a bad value says what to do."""

from pathlib import Path

import pytest

from xray_server.runtime.config import ENVIRONMENT_VARIABLES, ConfigError, load_settings

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_bind_locally_and_start_embedded():
    settings = load_settings({})
    assert settings.host == "127.0.0.1"
    assert settings.database_url is None


def test_values_are_read_and_typed():
    settings = load_settings(
        {
            "XRAY_DB_POOL_MAX": "7",
            "XRAY_DB_PREPARED_STATEMENTS": "on",
            "XRAY_DATABASE_URL": "postgresql://x/y",
            "XRAY_DB_POOL_TIMEOUT": "0.5",
        }
    )
    assert (settings.pool_max_size, settings.prepared_statements, settings.pool_timeout) == (7, True, 0.5)


@pytest.mark.parametrize(
    "env",
    [
        {"XRAY_DB_POOL_MAX": "many"},
        {"XRAY_MIGRATE_ON_START": "perhaps"},
        {"XRAY_DB_POOL_MIN": "5", "XRAY_DB_POOL_MAX": "2"},
    ],
)
def test_bad_values_name_the_variable(env):
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    assert "XRAY_DB_POOL" in str(info.value) or "XRAY_MIGRATE_ON_START" in str(info.value)


def test_every_variable_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in ENVIRONMENT_VARIABLES if name not in readme]
    assert missing == []
