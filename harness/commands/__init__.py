"""The CLI's feature commands: each module's ``register(app)`` adds its commands to ``harness``."""
