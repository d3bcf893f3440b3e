"""Which failures pass by themselves (the database or the broker unreachable, a deadlock), as
opposed to those a request or an event causes. One classification for the two places that act on
it: the consumer retries a transient failure instead of quarantining the event, and the edge
answers it with 503 `database-unavailable` and `Retry-After` instead of a 500."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator

from aiokafka.errors import KafkaError
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

#: SQLSTATE classes of conditions that pass by themselves: connection exception, transaction
#: rollback (serialization failure, deadlock), insufficient resources, operator intervention
#: (admin shutdown, cannot connect now), system error.
_TRANSIENT_SQLSTATE = frozenset({"08", "40", "53", "57", "58"})

#: An OSError on connect that is not a ConnectionError: the host or its network is unreachable.
_NETWORK_ERRNOS = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN, errno.EHOSTDOWN})


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        orig = current.orig if isinstance(current, DBAPIError) else None
        current = orig if isinstance(orig, BaseException) else current.__cause__


def is_transient(exc: BaseException) -> bool:
    """A failure that retrying later cures (database or broker unreachable, deadlock), as opposed to
    one the event itself causes. Follows the driver's error and explicit causes."""
    for e in _causes(exc):
        if isinstance(e, OperationalError | InterfaceError | DisconnectionError | PoolTimeout):
            return True
        if isinstance(e, DBAPIError) and e.connection_invalidated:
            return True
        if isinstance(e, ConnectionError | TimeoutError | socket.gaierror | KafkaError):
            return True
        if isinstance(e, OSError) and e.errno in _NETWORK_ERRNOS:
            return True
        sqlstate = getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)
        if isinstance(sqlstate, str) and sqlstate[:2] in _TRANSIENT_SQLSTATE:
            return True
    return False
