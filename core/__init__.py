"""Architecture-exact accelerator memory planning for the Gemma 4 family (pure, typed, no UI).

Import from the modules (core.estimate, core.fit, ...): this package imports nothing itself,
so concurrent first imports in a server's script threads cannot deadlock on it.
"""
