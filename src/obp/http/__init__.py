"""The HTTP layer: app factory, problem+json errors, middleware, health and dependencies."""
