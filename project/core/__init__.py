"""Framework-free building blocks: errors, password hashing, tokens, logging."""
