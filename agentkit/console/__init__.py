"""The operator console: who may sign in, and (as it grows) its pages under /console."""

from agentkit.console.access import (
    ROLES,
    AccessError,
    ConsoleUser,
    LoginLimiter,
    UsersFile,
    hash_token,
    verify_token,
)

__all__ = [
    "ROLES",
    "AccessError",
    "ConsoleUser",
    "LoginLimiter",
    "UsersFile",
    "hash_token",
    "verify_token",
]
