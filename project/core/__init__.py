"""Building blocks below the services: errors, hashing, tokens, keys, logging, Redis."""
