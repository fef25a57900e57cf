"""Marshmallow schemas: the API's input rules and output shapes."""
