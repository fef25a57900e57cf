"""WSGI entry point for gunicorn and the flask command."""

from project import create_app

app = create_app()
