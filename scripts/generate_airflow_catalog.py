"""Write airflow_component/data/airflow_options.json from the installed Airflow.

Run with the Airflow venv's Python (scripts/test.sh builds it with the pinned version and the
providers the stacks use):  .venv-airflow/bin/python scripts/generate_airflow_catalog.py
The real-Airflow suite regenerates it and fails when the committed file differs.

For each option of Airflow's own `config.yml` and every installed provider's config: its type
(boolean / integer / float / string; `config.yml` types some flags as strings, so a True/False
default makes a boolean), whether it is sensitive, and its allowed values where Airflow lists them.
"""

from __future__ import annotations

import json
import re
import sys
import warnings
from pathlib import Path
from typing import Any

warnings.simplefilter("ignore")

TARGET = Path(__file__).resolve().parents[1] / "airflow_component" / "data" / "airflow_options.json"


def catalog() -> dict[str, Any]:
    import airflow  # type: ignore[import-not-found]
    from airflow.configuration import conf  # type: ignore[import-not-found]

    sensitive = {(s.lower(), k.lower()) for s, k in conf.sensitive_config_values}
    enums = getattr(conf, "enums_options", {})
    sections: dict[str, dict[str, Any]] = {}
    for section, body in sorted(conf.configuration_description.items()):
        for option, spec in sorted((body.get("options") or {}).items()):
            kind = spec.get("type")
            default = str(spec.get("default"))
            if kind in (None, "string") and default in ("True", "False"):
                kind = "boolean"
            elif kind is None and re.fullmatch(r"-?\d+", default):
                kind = "integer"
            entry: dict[str, Any] = {
                "type": kind if kind in ("boolean", "integer", "float") else "string"
            }
            if (section, option) in sensitive:
                entry["sensitive"] = True
            if (section, option) in enums:
                entry["values"] = [str(getattr(v, "value", v)) for v in enums[(section, option)]]
            if spec.get("version_deprecated") or spec.get("deprecation_reason"):
                entry["deprecated"] = True
            sections.setdefault(section, {})[option] = entry
    return {"airflowVersion": airflow.__version__, "sections": sections}


def main() -> None:
    text = json.dumps(catalog(), indent=1, sort_keys=True) + "\n"
    if "--print" in sys.argv:
        sys.stdout.write(text)
        return
    TARGET.write_text(text)
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
