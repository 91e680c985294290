"""Run with the Airflow venv's python: check `AIRFLOW__S__K` env vars against the installed Airflow.

stdin: JSON list of {"where": str, "name": str, "value": str | null}. `value` is null when the
harness cannot know it (e.g. a `_CMD` form, which is never executed here).
stdout: JSON {"airflow_version", "options": <count>, "problems": [str], "checked": [str]}.

Existence, sensitivity (for `_CMD`/`_SECRET`), deprecation and enum values come from Airflow's own
configuration objects (core `config.yml` plus every installed provider's config); typed values are
parsed with Airflow's own getters (`conf.getboolean/getint/getfloat`) reading the env var.
"""

from __future__ import annotations

import json
import os
import re
import sys
import warnings

# A clean slate: only the variables under test may influence the parser.
for _name in list(os.environ):
    if _name.startswith("AIRFLOW__"):
        del os.environ[_name]

warnings.simplefilter("ignore")

import airflow  # type: ignore[import-not-found]  # noqa: E402
from airflow.configuration import conf  # type: ignore[import-not-found]  # noqa: E402

ENV_RE = re.compile(r"^AIRFLOW__(?P<section>[A-Z0-9_]+?)__(?P<key>[A-Z0-9_]+)$")


def main() -> None:
    entries = json.load(sys.stdin)
    description = conf.configuration_description  # core + providers (loaded lazily)
    options = {
        (section, key): spec
        for section, body in description.items()
        for key, spec in (body.get("options") or {}).items()
    }
    sensitive = {(s.lower(), k.lower()) for s, k in conf.sensitive_config_values}
    deprecated = {
        (new_section, new_key): (old_section, old_key)
        for (new_section, new_key), (old_section, old_key, _) in conf.deprecated_options.items()
    }
    deprecated_old = {old: new for new, old in deprecated.items()}
    enums = getattr(conf, "enums_options", {})
    problems: list[str] = []
    checked: list[str] = []
    seen: dict[str, dict[tuple[str, str], str]] = {}

    for entry in entries:
        where, name, value = entry["where"], entry["name"], entry["value"]
        match = ENV_RE.match(name)
        if not match:
            problems.append(f"{where}: {name}: not of the form AIRFLOW__<SECTION>__<KEY>")
            continue
        section, key = match.group("section").lower(), match.group("key").lower()
        form = "value"
        if (section, key) not in options:
            for suffix in ("_cmd", "_secret"):
                if key.endswith(suffix) and (section, key[: -len(suffix)]) in options:
                    form, key = suffix[1:], key[: -len(suffix)]
                    break
        if (section, key) not in options:
            if (section, key) in deprecated_old:
                new = deprecated_old[(section, key)]
                problems.append(f"{where}: {name}: deprecated name; use [{new[0]}] {new[1]}")
            else:
                problems.append(
                    f"{where}: {name}: [{section}] {key} is not an option of Airflow "
                    f"{airflow.__version__} or its installed providers"
                )
            continue
        spec = options[(section, key)]
        seen.setdefault(where, {})
        if (section, key) in seen[where]:
            problems.append(
                f"{where}: {name}: [{section}] {key} is set twice "
                f"({seen[where][(section, key)]} and {name})"
            )
        seen[where][(section, key)] = name
        if form != "value" and (section, key) not in sensitive:
            problems.append(
                f"{where}: {name}: Airflow honours _{form.upper()} only for sensitive options; "
                f"[{section}] {key} is not one"
            )
        if spec.get("version_deprecated") or spec.get("deprecation_reason"):
            problems.append(
                f"{where}: {name}: [{section}] {key} is deprecated: "
                f"{spec.get('deprecation_reason')}"
            )
        if form == "value" and value is not None:
            os.environ[name] = value
            try:
                kind = spec.get("type")
                default = str(spec.get("default"))
                # config.yml types some flags as `string` (e.g. [core] load_examples) or not at all.
                if kind in (None, "string") and default in ("True", "False"):
                    kind = "boolean"
                elif kind is None and re.fullmatch(r"-?\d+", default):
                    kind = "integer"
                if kind == "boolean":
                    conf.getboolean(section, key)
                elif kind == "integer":
                    conf.getint(section, key)
                elif kind == "float":
                    conf.getfloat(section, key)
                if (section, key) in enums and value not in enums[(section, key)]:
                    problems.append(
                        f"{where}: {name}={value!r}: not one of {enums[(section, key)]}"
                    )
            except Exception as error:
                problems.append(f"{where}: {name}={value!r}: invalid {kind}: {error}")
            finally:
                del os.environ[name]
        checked.append(f"{where}: {name}")
    json.dump(
        {
            "airflow_version": airflow.__version__,
            "options": len(options),
            "problems": problems,
            "checked": checked,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
