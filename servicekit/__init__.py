"""Plumbing the three services share: errors, auth, clients, health, metrics.

Never imports a service.
"""
