"""Helpers the client tests share."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


def wire(model: BaseModel) -> dict[str, Any]:
    """The record as the API sent it."""
    return model.model_dump(by_alias=True, mode="json", exclude_unset=True)
