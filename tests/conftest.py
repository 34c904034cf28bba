"""Shared fixtures: each real server the tests need lives in its own module under support/."""

pytest_plugins = [
    "tests.support.pg",
    "tests.support.feed_server",
    "tests.support.raw_server",
    "tests.support.slack_server",
]
