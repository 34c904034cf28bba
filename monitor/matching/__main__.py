"""Print the rule file JSON Schema: ``python -m monitor.matching > docs/rule-schema.json``."""

import sys

from monitor.matching.schema import schema_text

sys.stdout.write(schema_text())
