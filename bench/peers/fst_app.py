"""Flask-Security-Too with token authentication: GET /users/me returns the current user.

Served by gunicorn (sync workers, as Warden) from bench/.venv-peers on its own database:

    PEER_DATABASE_URL=postgresql+psycopg://... gunicorn -w 2 bench.peers.fst_app:app
    PEER_DATABASE_URL=... python -m bench.peers.fst_app seed USERS TOKENS_FILE

As the Flask-Security-Too docs set it up: SQLAlchemy models from ``fsqla_v3``, argon2 for
passwords, and ``@auth_required("token")``, which checks the token's signature and age and
loads its user by ``fs_uniquifier`` from the database on every request.
"""

from __future__ import annotations

import os
import sys
import uuid
from typing import Any

from flask import Flask, jsonify
from flask_security import Security, SQLAlchemyUserDatastore, auth_required, current_user
from flask_security.models import fsqla_v3 as fsqla
from flask_sqlalchemy import SQLAlchemy

app = Flask(__name__)
app.config.update(
    SECRET_KEY=os.environ.get("PEER_SECRET", "bench-peer-secret-" + "p" * 40),
    SECURITY_PASSWORD_SALT="bench-peer-salt-" + "q" * 20,
    SECURITY_PASSWORD_HASH="argon2",
    SECURITY_TOKEN_MAX_AGE=3600,
    SQLALCHEMY_DATABASE_URI=os.environ["PEER_DATABASE_URL"],
    SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
    WTF_CSRF_ENABLED=False,
)
db = SQLAlchemy(app)
fsqla.FsModels.set_db_info(db)


class Role(db.Model, fsqla.FsRoleMixin):  # type: ignore[misc,name-defined]
    """A role."""


class User(db.Model, fsqla.FsUserMixin):  # type: ignore[misc,name-defined]
    """A user."""


security = Security(app, SQLAlchemyUserDatastore(db, User, Role))


@app.get("/users/me")
@auth_required("token")
def me() -> Any:
    """The current user as JSON."""
    user = current_user
    return jsonify(
        id=user.id,
        email=user.email,
        username=user.username,
        active=user.active,
        confirmed_at=user.confirmed_at,
        create_datetime=user.create_datetime,
        roles=[role.name for role in user.roles],
    )


def seed(users: int, tokens_file: str, tokens: int) -> None:
    """Create the tables and ``users`` users; write auth tokens of the first ``tokens``."""
    from flask_security import hash_password

    with app.app_context():
        db.create_all()
        hashed = hash_password("peer bench passphrase 2026")  # argon2 once: seeding, not login
        rows = [
            {
                "email": f"peer{index}@bench.example",
                "password": hashed,
                "active": True,
                "fs_uniquifier": uuid.uuid4().hex,
            }
            for index in range(users)
        ]
        db.session.execute(db.insert(User), rows)
        db.session.commit()
        chosen = db.session.scalars(db.select(User).order_by(User.id).limit(tokens)).all()
        with open(tokens_file, "w") as out:
            out.writelines(user.get_auth_token() + "\n" for user in chosen)


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] != "seed":
        sys.exit("usage: python -m bench.peers.fst_app seed USERS TOKENS_FILE TOKENS")
    seed(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
