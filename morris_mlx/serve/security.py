"""Who may talk to the server: loopback by default, a bearer key for anything wider."""

from __future__ import annotations

import hmac
import ipaddress
import socket

from morris_mlx.errors import MorrisError


def is_loopback(host: str) -> bool:
    """True when every address `host` resolves to is a loopback address (127.0.0.0/8, ::1)."""
    if host in ("", "0.0.0.0", "::"):
        return False
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        raise MorrisError(f"cannot resolve host {host!r}; pass an address such as 127.0.0.1") from None
    # A name is loopback only if all of it is: "localhost" mapped to a LAN address in /etc/hosts is not.
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def check_bind(host: str, api_key: str | None) -> None:
    """Refuse to expose an unauthenticated server beyond this machine."""
    if api_key is not None and not api_key.strip():
        raise MorrisError("the API key is empty; pass a real secret with --api-key or MORRIS_API_KEY")
    if not api_key and not is_loopback(host):
        raise MorrisError(
            f"refusing to serve on {host} without an API key: anyone on the network could use it; "
            "set MORRIS_API_KEY (or --api-key) or bind 127.0.0.1"
        )


def bearer_matches(authorization: str | None, api_key: str) -> bool:
    """Constant-time check of an `Authorization: Bearer KEY` header."""
    if not authorization:
        return False
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode("utf-8"), api_key.encode("utf-8"))
