"""Serving engines' memory policies: base (shared rules), one module per engine, registry.

Deliberately empty of imports: a package whose __init__ imports its own modules lets two
script threads importing at once (a cold server's first requests) deadlock in Python's import
locks and see half-initialised modules.
"""
