"""Sentry's webhooks into the store: the receiver (`receiver`), the spool that keeps every
accepted delivery until it is written (`spool`), the writer thread that drains it under the
store's writer lock (`drain`), the secrets the receiver verifies with (`secrets`), and the
commands that create, list and remove a project's service hooks in Sentry (`install`).
"""
