"""Every table, imported once so that metadata (alembic, tests) sees them all."""

from app.domain.auth.models import ApiKey, ApiKeyPrefix, LoginEmail, RefreshToken, User
from app.domain.base import Base
from app.domain.orgs.models import Org

__all__ = ["ApiKey", "ApiKeyPrefix", "Base", "LoginEmail", "Org", "RefreshToken", "User"]
