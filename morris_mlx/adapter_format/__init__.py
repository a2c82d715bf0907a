"""The adapter-format floor: what an adapter folder holds and how to read it, beneath every backend.

Backends, export, the registry and the server all stand on it; it imports none of them.
"""
