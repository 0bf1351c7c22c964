"""The defaults live in `pipelines/trigg/settings.py`; `.dlt/config.toml` documents them."""

from __future__ import annotations

import dataclasses
import re
import tomllib

from pipelines.trigg.settings import TriggSettings
from tests.conftest import PROJECT_ROOT

CONFIG = PROJECT_ROOT / ".dlt" / "config.toml"


def documented_defaults() -> dict[str, object]:
    """The `# key = value` lines of `[sources.trigg]`, parsed as TOML."""
    section = CONFIG.read_text().split("[sources.trigg]\n", 1)[1]
    section = re.split(r"\n(?:# )?\[", section, maxsplit=1)[0]  # up to the next (example) table
    lines = re.findall(r"^# ([a-z_]+ = .+?)(?:[ \t]+#.*)?$", section, flags=re.M)
    return tomllib.loads("\n".join(lines))


def test_the_config_file_sets_nothing_of_the_source_itself() -> None:
    # a value set here would be a second home of a default, free to drift from settings.py
    assert tomllib.loads(CONFIG.read_text()).get("sources", {}).get("trigg", {}) == {}


def test_the_config_file_documents_every_default_as_it_is() -> None:
    documented = documented_defaults()
    defaults = TriggSettings()
    for key, value in documented.items():
        if key in ("base_url", "initial_since"):  # examples: no default
            continue
        assert getattr(defaults, key) == value, key
    documented_keys = set(documented)
    settable = {
        field.name
        for field in dataclasses.fields(TriggSettings)
        if field.name not in ("api_key", "pii_key") and not field.name.startswith("_")
    }
    assert settable <= documented_keys, settable - documented_keys
