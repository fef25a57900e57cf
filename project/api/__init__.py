"""The HTTP edge: routing, request parsing, authentication and the error shape."""
