"""Property: whatever the input, no lead that leaves the transforms makes the sandbox answer 500.

The sandbox reproduces quirks 2-4 (unknown field, empty value, punctuation-only lastName) and
null values as 500s; the outgoing schema is the guarantee that we never trigger them.
"""

from __future__ import annotations

import httpx
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl.mapping import Mapping
from etl.schemas import validate_leads
from etl.transform import to_payload, transform

CELL = st.one_of(
    st.just(""),
    st.sampled_from([" ", ".", "..", ", ", "-", "--", " . ", "\t", "N/A", "O'Brien", "José", "李", "=1+1"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12),
)
EMAIL = st.one_of(
    CELL,
    st.builds(lambda a, b: f"{a}@{b}.com", st.from_regex(r"[A-Za-z0-9._+-]{1,12}", fullmatch=True),
              st.from_regex(r"[a-z0-9-]{1,10}", fullmatch=True)),
    st.builds(lambda a: f"  {a.upper()}@Example.COM ", st.from_regex(r"[a-z]{1,8}(\.[a-z]{1,8})?", fullmatch=True)),
)
COLUMNS = ["firstName", "lastName", "phone", "Mobile Phone", "title", "companyName", "notes", "industry",
           "aiLeadScore", "linkedinUrl"]
ROW = st.fixed_dictionaries({"email": EMAIL, **{c: CELL for c in COLUMNS}})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(ROW, min_size=1, max_size=12))
def test_no_transformed_lead_makes_the_sandbox_answer_500(lg_sandbox, rows: list[dict[str, str]]) -> None:
    frame = pl.DataFrame(rows, schema={"email": pl.String, **{c: pl.String for c in COLUMNS}}).with_row_index(
        "_row", offset=1
    ).with_columns(pl.col("_row").cast(pl.Int64))
    result = transform(frame, Mapping.builtin("csv"), "props")
    leads = validate_leads(result.leads)
    assert leads.height + result.rejects.height + result.duplicates.height == len(rows)
    headers = lg_sandbox.bearer()
    with httpx.Client(base_url=lg_sandbox.base_url, headers=headers) as http:
        for lead in leads.to_dicts():
            payload = to_payload(lead)
            assert "phone" not in payload and "" not in payload.values()
            response = http.post("/api/leads", json=payload)
            assert response.status_code == 201, (payload, response.text)
    assert not any(lg_sandbox.stats()["quirk_500"].values())
