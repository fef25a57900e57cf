"""Extension objects, created unbound; ``create_app`` binds them to an app."""

from flask import request
from flask_cors import CORS
from flask_limiter import Limiter
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from project.compat import CachingJWTManager
from project.core.networks import address_key
from project.core.redis_client import RedisClient
from project.core.settings import current_settings

# Deterministic constraint names, so migrations can drop and alter them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base for every model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Objects stay readable after a commit without another SELECT (and without failing if
# the connection drops right after the commit).
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()
jwt = CachingJWTManager()
cors = CORS()
api = Api()
redis_client = RedisClient()


def client_key() -> str:
    """The key Flask-Limiter counts a request under: its address's network (core/networks)."""
    return address_key(request.remote_addr)


# Limits are callables reading the app's config, so each app applies its own values.
limiter = Limiter(
    key_func=client_key,
    default_limits=[lambda: current_settings().RATELIMIT_DEFAULT],
    # CORS preflights carry no credentials and do no work: they never count.
    default_limits_exempt_when=lambda: request.method == "OPTIONS",
)
