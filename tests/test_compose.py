"""No Docker engine runs here, so check that docker-compose.yml wires what the code reads."""

import re
from pathlib import Path

from ruamel.yaml import YAML

from monitor.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]


def compose() -> dict:
    return YAML(typ="safe").load((ROOT / "docker-compose.yml").read_text())


def test_monitor_service_sets_only_variables_the_settings_read():
    environment = compose()["services"]["monitor"]["environment"]
    known = set(Settings.environment_names().values())
    assert set(environment) <= known, set(environment) - known
    for required in (
        "MONITOR_DATABASE_URL",
        "SLACK_BOT_TOKEN",
        "SLACK_WEBHOOK_URL",
        "MONITOR_SLACK_CHANNEL",
        "MONITOR_RULES",
        "MONITOR_FEEDS",
    ):
        assert required in environment


def test_compose_defaults_form_valid_settings():
    environment = compose()["services"]["monitor"]["environment"]
    # Substitute ${VAR:-default} the way compose does when VAR is unset.
    resolved = {
        name: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))
        for name, value in environment.items()
    }
    settings = load_settings(resolved)
    assert settings.database_url == "postgresql+psycopg://monitor:monitor@db:5432/monitor"
    assert not settings.slack_configured


def test_database_password_and_host_match_the_db_service():
    services = compose()["services"]
    db = services["db"]
    assert db["image"].startswith("postgres:15")
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert services["monitor"]["depends_on"]["db"]["condition"] == "service_healthy"
    url = services["monitor"]["environment"]["MONITOR_DATABASE_URL"]
    assert "@db:5432/" + db["environment"]["POSTGRES_DB"] in url
    assert db["environment"]["POSTGRES_USER"] in url
    assert any(volume.startswith("pgdata:") for volume in db["volumes"])


def test_rules_are_mounted_read_only_and_built_from_the_repo_dockerfile():
    monitor = compose()["services"]["monitor"]
    assert "./rules:/app/rules:ro" in monitor["volumes"]
    assert monitor["build"] == "."
    assert (ROOT / "Dockerfile").is_file()


def test_several_workers_can_run_and_each_is_health_checked():
    monitor = compose()["services"]["monitor"]
    # `--scale` needs workers without a fixed host port or container name.
    assert "ports" not in monitor and "container_name" not in monitor
    assert monitor["deploy"]["replicas"] == "${MONITOR_WORKERS:-2}"
    port = monitor["environment"]["MONITOR_METRICS_PORT"]
    assert monitor["expose"] == [str(port)]
    probe = " ".join(monitor["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}/healthz" in probe
    assert monitor["environment"]["MONITOR_METRICS_HOST"] == "0.0.0.0"
