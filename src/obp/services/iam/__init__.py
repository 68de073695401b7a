"""IAM: policies, roles, identities, authentication and authorization. Import from here."""

from obp.services.iam.access import AccessControl
from obp.services.iam.auth import AuthService, Throttled
from obp.services.iam.identities import IdentityService
from obp.services.iam.model import Ref
from obp.services.iam.passwords import PasswordHasher
from obp.services.iam.service import EVENT_SERVICE, IamService
from obp.services.iam.throttle import LoginThrottle
from obp.services.iam.tokens import TokenIssuer, TokenSettings, TokenVerifier

__all__ = [
    "EVENT_SERVICE",
    "AccessControl",
    "AuthService",
    "IamService",
    "IdentityService",
    "LoginThrottle",
    "PasswordHasher",
    "Ref",
    "Throttled",
    "TokenIssuer",
    "TokenSettings",
    "TokenVerifier",
]
