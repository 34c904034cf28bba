"""media-monitor: poll news feeds, match YAML rules, alert Slack with the reason they matched."""

__version__ = "0.1.0"
