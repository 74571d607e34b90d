"""All routers, gathered in one place."""

from fastapi import APIRouter

from app.api import ops
from app.api.v1 import api_keys, auth, me, org, users

api_router = APIRouter()
for module in (ops, auth, me, org, users, api_keys):
    api_router.include_router(module.router)
