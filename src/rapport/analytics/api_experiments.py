"""A person's own variant of an A/B test: GET /v1/analytics/experiments/{key}."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from rapport.analytics import schemas_reports as s
from rapport.analytics import service_reports as service
from rapport.kernel.deps import CallerDep

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])


@router.get("/experiments/{key}", response_model=s.MyVariantOut)
async def get_my_variant(
    key: Annotated[str, Path(pattern=s.KEY_PATTERN, max_length=64, description="The test's key.")],
    caller: CallerDep,
) -> s.MyVariantOut:
    """Your variant of an A/B test, the same every time you ask; your first answer while
    it runs counts as your exposure, while your `privacy_policy` consent is given (without
    it you get your variant, but no exposure is kept: `exposed_at` is null). A stopped test
    answers its control (the first variant) to those it never showed another."""
    async with caller.transaction() as (db, actor):
        return await service.expose(db, actor, key=key)
