"""GET /v1/media/{id}/content: the bytes whole or one range of them (first bytes, the
middle, a suffix, open-ended; 416 past the end; If-Range), validated by an ETag that is
their SHA-256 (If-None-Match → 304), with the headers that keep an upload from ever
running as a page: Content-Disposition (RFC 6266), nosniff, a sandboxing CSP, private
caching."""

from __future__ import annotations

import pytest

from tests.media.upload_support import png_bytes, random_bytes, text_bytes, uploaded
from tests.support import problem_type

pytestmark = pytest.mark.module_database

SIZE = 3_000_000


@pytest.fixture
async def blob(client, alice):
    """A 3 MB file of alice's: (its content URL, its bytes, its ETag)."""
    data = random_bytes(SIZE)
    created = await uploaded(client, alice, data, name="clip.bin")
    return created["urls"]["content"], data, f'"{created["sha256"]}"'


async def get(client, persona, url, **headers):
    return await client.get(url, headers={**persona.headers, **headers})


async def test_the_whole_file_with_its_validators_and_headers(client, alice, blob):
    url, data, etag = blob

    response = await get(client, alice, url)

    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-length"] == str(SIZE)
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["etag"] == etag
    assert response.headers["accept-ranges"] == "bytes"
    assert "private" in response.headers["cache-control"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == "sandbox; default-src 'none'"
    assert response.headers["content-disposition"] == "attachment; filename=\"clip.bin\"; filename*=UTF-8''clip.bin"


@pytest.mark.parametrize(
    ("asked", "first", "last"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=1000000-1999999", 1_000_000, 1_999_999),
        ("bytes=-500", SIZE - 500, SIZE - 1),
        ("bytes=2999000-", 2_999_000, SIZE - 1),
        ("bytes=2999990-9999999999", 2_999_990, SIZE - 1),
        ("bytes=0-0", 0, 0),
        (f"bytes=-{SIZE + 10}", 0, SIZE - 1),
    ],
)
async def test_one_range(client, alice, blob, asked, first, last):
    url, data, etag = blob

    response = await get(client, alice, url, range=asked)

    assert response.status_code == 206
    assert response.content == data[first : last + 1]
    assert response.headers["content-range"] == f"bytes {first}-{last}/{SIZE}"
    assert response.headers["content-length"] == str(last - first + 1)
    assert response.headers["etag"] == etag


@pytest.mark.parametrize("asked", [f"bytes={SIZE}-", f"bytes={SIZE + 5}-{SIZE + 10}", "bytes=-0"])
async def test_a_range_beyond_the_end_is_not_satisfiable(client, alice, blob, asked):
    url, _, _ = blob

    response = await get(client, alice, url, range=asked)

    assert response.status_code == 416
    assert problem_type(response) == "range-not-satisfiable"
    assert response.headers["content-range"] == f"bytes */{SIZE}"


@pytest.mark.parametrize("asked", ["bytes=0-1,5-6", "bytes=abc", "items=0-10", "bytes=10-5", "bytes=-"])
async def test_a_range_this_server_does_not_serve_gets_the_whole(client, alice, blob, asked):
    url, data, _ = blob

    response = await get(client, alice, url, range=asked)

    assert response.status_code == 200
    assert response.content == data


async def test_if_range_resumes_only_the_same_bytes(client, alice, blob):
    url, data, etag = blob

    same = await get(client, alice, url, range="bytes=100-199", **{"if-range": etag})
    changed = await get(client, alice, url, range="bytes=100-199", **{"if-range": '"' + "0" * 64 + '"'})
    dated = await get(client, alice, url, range="bytes=100-199", **{"if-range": "Wed, 21 Oct 2015 07:28:00 GMT"})

    assert same.status_code == 206 and same.content == data[100:200]
    assert changed.status_code == 200 and changed.content == data
    assert dated.status_code == 200


@pytest.mark.parametrize("form", ["{etag}", "W/{etag}", '"other", {etag}', "*"])
async def test_if_none_match_with_the_etag_is_not_modified(client, alice, blob, form):
    url, _, etag = blob

    response = await get(client, alice, url, **{"if-none-match": form.format(etag=etag)})

    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag


async def test_if_none_match_with_another_etag_gets_the_bytes(client, alice, blob):
    url, data, _ = blob

    response = await get(client, alice, url, **{"if-none-match": '"' + "0" * 64 + '"'})

    assert response.status_code == 200
    assert response.content == data


async def test_media_is_shown_inline_everything_else_downloaded(client, alice):
    image = await uploaded(client, alice, png_bytes(), name="photo.png")
    pdf = await uploaded(client, alice, b"%PDF-1.4\n" + random_bytes(300), name="paper.pdf")
    notes = await uploaded(client, alice, text_bytes(), name="notes.txt")

    shown = await get(client, alice, image["urls"]["content"])
    document = await get(client, alice, pdf["urls"]["content"])
    text = await get(client, alice, notes["urls"]["content"])

    assert shown.headers["content-disposition"].startswith('inline; filename="photo.png"')
    assert shown.headers["content-type"] == "image/png"
    assert document.headers["content-disposition"].startswith("inline;")
    assert text.headers["content-disposition"].startswith('attachment; filename="notes.txt"')
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    for response in (shown, document, text):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["content-security-policy"].startswith("sandbox")


async def test_a_name_beyond_ascii_is_given_exactly_in_filename_star(client, alice):
    name = "été résumé 履歴書.txt"
    created = await uploaded(client, alice, text_bytes(), name=name)

    response = await get(client, alice, created["urls"]["content"])

    disposition = response.headers["content-disposition"]
    assert disposition == (
        "attachment; filename=\"_t_ r_sum_ ___.txt\"; filename*=UTF-8''%C3%A9t%C3%A9%20r%C3%A9sum%C3%A9%20"
        "%E5%B1%A5%E6%AD%B4%E6%9B%B8.txt"
    )


async def test_a_quote_in_a_name_cannot_break_out_of_the_header(client, alice):
    created = await uploaded(client, alice, text_bytes(), name='a"; filename="evil.html.txt')

    response = await get(client, alice, created["urls"]["content"])

    assert created["file_name"] == "a_; filename=_evil.html.txt"
    assert response.headers["content-disposition"].startswith('attachment; filename="a_; filename=_evil.html.txt";')


async def test_only_whole_downloads_are_counted(client, alice, blob):
    url, _, etag = blob
    file_url = url.removesuffix("/content")

    await get(client, alice, url)
    await get(client, alice, url, range="bytes=0-10")
    await get(client, alice, url, **{"if-none-match": etag})
    await get(client, alice, url)

    metadata = await get(client, alice, file_url)
    assert metadata.json()["download_count"] == 2
