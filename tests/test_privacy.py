"""Personal data: pseudonymized or dropped before anything reaches the warehouse, nested data and
the quarantine included, and pseudonyms still join across runs."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from pipelines.runner import run_once
from pipelines.simulator import TriggSimulator
from pipelines.trigg.errors import ConfigError
from pipelines.trigg.fast_path import _set_pii_key
from pipelines.trigg.privacy import (
    LOWERED_OTHERWISE,
    NORMALIZERS,
    WHITESPACE,
    Privacy,
    SqlPrivacy,
    _year,
    normalize_phone,
)
from pipelines.trigg.settings import TriggSettings
from tests.conftest import run_trigg, trigg_env
from tests.targets import duckdb_target

KEY = "pii-test-key"


def personal_values(simulator: TriggSimulator) -> set[str]:
    values: set[str] = set()
    for customer in simulator.store.snapshot():
        data = customer.data
        values.update(
            str(data[field]) for field in ("email", "mobilePhone", "address") if data.get(field)
        )
        values.add(str(data["birthDate"])[:10])
    return values


def everything_in(warehouse: str) -> str:
    """Every value of every table, `_dlt` ones included, as one searchable text."""
    target = duckdb_target(warehouse)
    return json.dumps(
        {table: target.query(f'select * from "{table}"') for table in sorted(target.tables())},
        default=str,
    )


def settings_for(simulator: TriggSimulator, pii: str, key: str | None = KEY) -> TriggSettings:
    return TriggSettings(
        base_url=simulator.base_url, api_key=simulator.api_key, pii=pii, pii_key=key
    )


@pytest.mark.parametrize("mode", ["pseudonymize", "drop"])
def test_no_raw_email_phone_address_or_birth_date_reaches_the_warehouse(
    simulator: TriggSimulator, warehouse: str, mode: str
) -> None:
    simulator.store.customers[next(iter(simulator.store.customers))].data["extendedProperties"] = {
        "contact": {"backup": "Kari.Nordmann@Example.no", "phones": ["+47 912 34 567"]}
    }
    simulator.extra_envelopes = [
        {"data": {"email": "no.id@example.no", "mobilePhone": "+4790000001"}, "metaData": {}}
    ]
    summary = run_once(settings_for(simulator, mode), warehouse)
    simulator.change(10)
    run_once(settings_for(simulator, mode), warehouse)

    stored = everything_in(warehouse)
    assert summary.pii == mode
    leaked = [value for value in personal_values(simulator) if value in stored]
    assert leaked == []
    for raw in ("Kari.Nordmann@Example.no", "kari.nordmann@example.no", "912 34 567", "no.id@"):
        assert raw not in stored  # free-form properties and the quarantine too
    target = duckdb_target(warehouse)
    years = target.query(
        "select count(birth_year), count(birth_date), count(address) from customers"
    )
    assert years == [(len(simulator.store.customers), 0, 0)]


def test_pseudonyms_join_the_same_person_across_runs_and_formats(
    simulator: TriggSimulator, warehouse: str
) -> None:
    customer = simulator.store.customers[next(iter(simulator.store.customers))]
    customer.data["email"] = "Kari.Nordmann@Example.no"
    customer.data["mobilePhone"] = "+47 912 34 567"
    run_once(settings_for(simulator, "pseudonymize"), warehouse)
    target = duckdb_target(warehouse)
    query = f"select email, mobile_phone from customers where id = '{customer.data['id']}'"
    first = target.query(query)

    customer.data["email"] = "  kari.nordmann@example.NO "
    customer.data["mobilePhone"] = "0047 91234567"
    customer.data["loyalty"]["pointsActive"] += 10
    customer.updated_at = simulator.clock().replace(microsecond=0)
    run_once(settings_for(simulator, "pseudonymize"), warehouse)

    assert target.query(query) == first
    privacy = Privacy("pseudonymize", KEY)
    assert first == [
        (privacy.pseudonym("kari.nordmann@example.no"), privacy.pseudonym("+4791234567"))
    ]


def test_phone_numbers_are_normalised_to_e164() -> None:
    assert normalize_phone("+47 912 34 567") == "+4791234567"
    assert normalize_phone("0047 91234567") == "+4791234567"
    assert normalize_phone("912 34 567") == "+4791234567"
    assert normalize_phone("(+46) 70-123 45 67") == "+46701234567"


def test_pseudonymize_without_a_key_is_refused_clearly(
    simulator: TriggSimulator, tmp_path: Path
) -> None:
    env = trigg_env(simulator, str(tmp_path / "w.duckdb"), SOURCES__TRIGG__PII="pseudonymize")
    result = run_trigg("run", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "SOURCES__TRIGG__PII_KEY" in result.stderr and "Traceback" not in result.stderr
    assert simulator.requests == []
    with pytest.raises(ConfigError, match="is not one of keep, pseudonymize, drop"):
        Privacy("hash-it")


def test_switching_modes_on_a_loaded_warehouse_needs_a_full_refresh(
    simulator: TriggSimulator, tmp_path: Path
) -> None:
    warehouse = str(tmp_path / "w.duckdb")
    keep = trigg_env(simulator, warehouse)
    pseudonymize = {**keep, "SOURCES__TRIGG__PII": "pseudonymize", "SOURCES__TRIGG__PII_KEY": KEY}
    assert run_trigg("run", env=keep, cwd=tmp_path).returncode == 0

    refused = run_trigg("run", env=pseudonymize, cwd=tmp_path)
    assert refused.returncode == 1
    assert "pii = keep" in refused.stderr and "--full-refresh" in refused.stderr
    assert any(value in everything_in(warehouse) for value in personal_values(simulator))

    refreshed = run_trigg("run", "--full-refresh", env=pseudonymize, cwd=tmp_path)
    assert refreshed.returncode == 0, refreshed.stderr
    assert "personal data pseudonymize" in refreshed.stdout
    stored = everything_in(warehouse)
    assert [value for value in personal_values(simulator) if value in stored] == []
    target = duckdb_target(warehouse)
    assert target.query("select count(*) from customers") == [(len(simulator.store.customers),)]
    again = run_trigg("run", env=pseudonymize, cwd=tmp_path)  # the new mode is now the norm
    assert again.returncode == 0, again.stderr


def test_the_mode_is_recorded_in_the_run_history(simulator: TriggSimulator, warehouse: str) -> None:
    run_once(settings_for(simulator, "drop"), warehouse)
    assert duckdb_target(warehouse).query("select outcome, pii from run_history") == [
        ("succeeded", "drop")
    ]


TRICKY = {
    "email": [
        "Kari.Nordmann@Example.NO",
        "  kari@example.no\t\u3000",
        "cecilie.ødegård78@gmail.com",
        "STRASSE@ÄÖÜ.de",
        "İstanbul@example.tr",
        "ΟΔΥΣΣΕΥΣ@example.gr",
        "",
    ],
    "mobilePhone": [
        "+47 912 34 567",
        "0047 91234567",
        "912 34 567",
        "(+46) 70-123 45 67",
        "\xa0+4791234567 ",
        "٩١٢٣٤٥٦٧",
        "123",
        "",
    ],
    "firstName": ["\u3000Åse ", "Ola\u2003", "Åsmund", ""],
    "lastName": ["  Ødegård", "Bø", "\x1cNordmann\x85"],
}

PYTHON_ONLY = {"İstanbul@example.tr", "ΟΔΥΣΣΕΥΣ@example.gr", "٩١٢٣٤٥٦٧"}


@pytest.mark.parametrize("mode", ["pseudonymize", "drop"])
def test_the_fast_paths_sql_gives_what_privacy_apply_gives_or_leaves_it_to_python(
    mode: str,
) -> None:
    """Normalisation and HMAC in DuckDB SQL, value for value against `Privacy`; where the SQL
    says it cannot match (`needs_python`), the record takes the Python way."""
    privacy = Privacy(mode, KEY)
    sql = SqlPrivacy(privacy)
    with duckdb.connect() as connection:
        _set_pii_key(connection, KEY)
        for field, values in TRICKY.items():
            for value in values:
                got, python_only = connection.execute(
                    f"select {sql.value(field, 'v')}, {sql.needs_python(field, 'v')}"
                    " from (select $1::VARCHAR as v)",
                    [value],
                ).fetchone()
                expected = privacy._identifier(value, NORMALIZERS[field])
                assert python_only or got == expected, (field, value)
                assert python_only == (mode == "pseudonymize" and value in PYTHON_ONLY), value


def test_birth_years_and_free_form_scrubbing_in_sql_match_python_or_go_to_python() -> None:
    sql = SqlPrivacy(Privacy("pseudonymize", KEY))
    privacy = Privacy("pseudonymize", KEY)
    with duckdb.connect() as connection:
        for text in ["1990-02-03T00:00:00", "1990", " 1990", "١٩٩٠-01-01", "abc", "", "199"]:
            year, python_only = connection.execute(
                f"select {sql.birth_year('$1')}, {sql.birth_year_needs_python('$1')}", [text]
            ).fetchone()
            assert python_only or year == _year(text), text
        for free_form in [
            {"memberLevel": "Gold", "source": "app"},
            {"contact": {"backup": "Kari@Example.no"}},
            {"phones": ["+47 912 34 567"]},
            {"since": "2024-01-01"},  # eight digits: Python takes it for a phone number
            {"a": "1234", "b": "5678"},
            {"note": 'say "91234567"'},
            {"arabic": "٩١٢٣٤٥٦٧"},
        ]:
            text = json.dumps(free_form, ensure_ascii=False)
            [(flagged,)] = connection.execute(
                f"select {sql.may_need_scrubbing('$1')}", [text]
            ).fetchall()
            assert flagged or privacy._scrub(free_form) == free_form, free_form


def test_duckdb_lowers_and_strips_like_python_but_for_the_characters_it_names() -> None:
    """A guard for upgrades of DuckDB or Python: every character with a case, lowered both
    ways, and every character `str.strip()` strips."""
    everything = [chr(code) for code in range(0x110000) if not 0xD800 <= code <= 0xDFFF]
    assert "".join(c for c in everything if c.isspace()) == WHITESPACE
    characters = [c for c in everything if c.lower() != c or c.upper() != c]
    with duckdb.connect() as connection:
        lowered = connection.execute(
            "select lower(c) from unnest(?::VARCHAR[]) with ordinality t(c, n) order by n",
            [characters],
        ).fetchall()
    differing = {c for c, (low,) in zip(characters, lowered, strict=True) if c.lower() != low}
    assert differing <= set(LOWERED_OTHERWISE[1:-1])
