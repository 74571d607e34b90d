from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, model_validator

from app.domain.schemas import Currency, InputModel, Name, ReadModel

StageKind = Literal["open", "won", "lost"]
ForecastCategory = Literal["pipeline", "best_case", "commit", "omitted"]
FORECAST_DOC = ("where deals in this stage count in the forecast; deals copy it when they enter the stage. "
                "Default from kind and probability: won → commit, lost → omitted, open: 70 and up → commit, "
                "40 and up → best_case, else pipeline")


class StageCreate(InputModel):
    name: Name
    probability: int = Field(ge=0, le=100, description="win likelihood in percent, for the weighted forecast")
    kind: StageKind = Field("open", description=(
        "a deal's status follows its stage's kind. A pipeline may hold several won stages in order (e.g. Won → "
        "Installation → Done): a deal is won from the first it enters, and moves among them keep its `closed_at` "
        "(recorded in the stage history; reports count it once)"))
    rotting_days: int | None = Field(None, ge=1, le=3650, description="a deal idle this long is rotting")
    position: int | None = Field(
        None, ge=-(2**31), le=2**31 - 1,
        description="Where the stage goes. Creating a pipeline: the stages are put in the order of their positions "
                    "(any integers, gaps allowed, ties keep the order given; stages without one come last) and "
                    "stored as 0..n-1. Adding a stage: the 0-based place it takes (clamped; later stages shift); "
                    "default last.")
    forecast_category: ForecastCategory | None = Field(None, description=FORECAST_DOC)


class StageUpdate(InputModel):
    name: Name | None = None
    probability: int | None = Field(None, ge=0, le=100)
    kind: StageKind | None = None
    rotting_days: int | None = Field(None, ge=1, le=3650)
    forecast_category: ForecastCategory | None = Field(
        None, description="null: back to the default from kind and probability. A stage on its default "
                          "category follows a change of kind or probability; one set otherwise keeps it. "
                          "Deals already in the stage keep theirs")


class StageRead(ReadModel):
    id: UUID
    pipeline_id: UUID
    name: str
    position: int
    probability: int
    kind: StageKind
    rotting_days: int | None
    forecast_category: ForecastCategory
    version: int


class StageReorder(InputModel):
    stage_ids: Annotated[list[UUID], Field(min_length=1, max_length=100, description="every stage, in the new order")]


def check_stage_kinds(kinds: list[str]) -> None:
    missing = [k for k in ("open", "won", "lost") if k not in kinds]
    if missing:
        raise ValueError(f"a pipeline needs at least one open, one won and one lost stage (missing: {', '.join(missing)})")


class PipelineCreate(InputModel):
    model_config = {"json_schema_extra": {"examples": [{
        "name": "New business", "currency": "EUR", "stages": [
            {"name": "Qualification", "probability": 10}, {"name": "Proposal", "probability": 50},
            {"name": "Won", "probability": 100, "kind": "won"}, {"name": "Lost", "probability": 0, "kind": "lost"}]}]}}

    name: Name
    currency: Currency | None = Field(None, description="default: the organisation's default_currency")
    is_default: bool = False
    stages: Annotated[list[StageCreate], Field(min_length=3, max_length=100)]

    @model_validator(mode="after")
    def _kinds(self) -> PipelineCreate:
        check_stage_kinds([s.kind for s in self.stages])
        return self


class PipelineUpdate(InputModel):
    """Stages change through `/v1/pipelines/{id}/stages`."""

    name: Name | None = None
    currency: Currency | None = None
    is_default: bool | None = None


class PipelineRead(ReadModel):
    id: UUID
    name: str
    currency: str
    is_default: bool
    stages: list[StageRead]
    created_at: datetime
    updated_at: datetime
    version: int
    deleted_at: datetime | None = None
