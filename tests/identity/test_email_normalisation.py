"""E-mail addresses are trimmed and lower-cased at the edge, whatever their spelling."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rapport.identity.schemas import normalise_email

local_parts = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._+", min_size=1, max_size=30).filter(
    lambda s: not s.startswith(".") and not s.endswith(".") and ".." not in s
)
domains = st.sampled_from(["example.com", "mail.example.org", "x.io"])


@given(local=local_parts, domain=domains, upper=st.booleans(), pad=st.sampled_from(["", " ", "\t", "  "]))
def test_normalised_form_is_trimmed_lower_case_and_stable(local, domain, upper, pad):
    typed = f"{pad}{local}@{domain}{pad}"
    if upper:
        typed = typed.upper()
    normalised = normalise_email(typed)
    assert normalised == f"{local}@{domain}".lower()
    assert normalise_email(normalised) == normalised


@pytest.mark.parametrize("bad", ["", "no-at-sign", "a@", "@example.com", "a@@example.com", "a b@example.com"])
def test_malformed_addresses_are_refused(bad):
    with pytest.raises(ValueError):
        normalise_email(bad)


async def test_login_accepts_any_spelling_of_the_address(client, alice):
    response = await client.post("/v1/auth/login", json={"email": "  ALICE@Example.COM ", "password": alice.password})
    assert response.status_code == 200
    assert response.json()["user_id"] == alice.user_id
