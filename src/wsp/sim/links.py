"""Link conditions between the simulated network's hosts (``docs/guide/time-and-links.rst``): the
latency, jitter, bandwidth and datagram loss of traffic from one host to
another, and the state that makes bandwidth real -- when each direction of
a link is free to put its next byte on the wire.

This is the only place that validates link parameters and computes when a
packet sent now arrives.  ``Network.set_link`` fills the table; the
network's clocked data path asks it for :meth:`LinkTable.arrival`.
"""
from __future__ import annotations

import math
import random
from .socket import check_address

__all__ = ["Link", "LinkTable", "ANY", "host_arg"]

ANY = "*"                     # a host pattern that matches every host


def _seconds(value: object, name: str) -> float:
    """A non-negative finite number of seconds, or TypeError/ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0.0:
        raise ValueError(f"{name} must be a finite number of seconds >= 0, not {value!r}")
    return seconds


def host_arg(value: object, name: str) -> str:
    """An IPv4 host string (normalised) or ``"*"``; TypeError or ValueError
    naming `name` otherwise."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be an IPv4 host string or '*', not {type(value).__name__}")
    if value == ANY:
        return ANY
    try:
        return check_address((value, 0))[0]
    except Exception:
        raise ValueError(f"{name} must be an IPv4 host string or '*', not {value!r}") from None


class Link:
    """The conditions of one direction of a link (immutable once made)."""

    __slots__ = ("latency", "jitter", "bandwidth", "loss")

    def __init__(self, latency: object = 0.0, jitter: object = 0.0, bandwidth: object = None,
                 loss: object = 0.0) -> None:
        self.latency = _seconds(latency, "latency")
        self.jitter = _seconds(jitter, "jitter")
        if bandwidth is not None:
            if isinstance(bandwidth, bool) or not isinstance(bandwidth, (int, float)):
                raise TypeError("bandwidth must be a number of bytes per second or None, "
                                f"not {type(bandwidth).__name__}")
            if not (math.isfinite(float(bandwidth)) and bandwidth > 0):
                raise ValueError(f"bandwidth must be > 0 bytes per second, not {bandwidth!r}")
            bandwidth = float(bandwidth)
        self.bandwidth: float | None = bandwidth
        if isinstance(loss, bool) or not isinstance(loss, (int, float)):
            raise TypeError(f"loss must be a probability, not {type(loss).__name__}")
        if not 0.0 <= float(loss) <= 1.0:
            raise ValueError(f"loss must be within [0, 1], not {loss!r}")
        self.loss = float(loss)

    @property
    def timed(self) -> bool:
        """Whether these conditions need a clock (latency, jitter or bandwidth)."""
        return bool(self.latency or self.jitter or self.bandwidth is not None)

    def __repr__(self) -> str:
        return (f"Link(latency={self.latency}, jitter={self.jitter}, "
                f"bandwidth={self.bandwidth}, loss={self.loss})")


_PERFECT = Link()


class LinkTable:
    """The conditions set between hosts, and when each direction is busy.

    A lookup tries ``(a, b)``, then ``(a, "*")``, ``("*", b)`` and
    ``("*", "*")``; without a match the link is perfect (no delay, no
    loss).  The latest ``set`` for a pair wins."""

    def __init__(self, rng: random.Random) -> None:
        self.random = rng
        self._links: dict[tuple[str, str], Link] = {}
        self._busy_until: dict[tuple[str, str], float] = {}   # (src, dst) -> wire free at
        self._cache: dict[tuple[str, str], Link] = {}

    def set(self, a: str, b: str, link: Link, one_way: bool) -> None:
        """Conditions for ``a -> b`` (and ``b -> a`` unless `one_way`)."""
        self._links[(a, b)] = link
        if not one_way:
            self._links[(b, a)] = link
        self._cache.clear()

    def get(self, src: str, dst: str) -> Link:
        """The conditions of traffic from host `src` to host `dst`."""
        key = (src, dst)
        link = self._cache.get(key)
        if link is None:
            links = self._links
            link = (links.get(key) or links.get((src, ANY)) or links.get((ANY, dst))
                    or links.get((ANY, ANY)) or _PERFECT)
            self._cache[key] = link
        return link

    def perfect(self, src: str, dst: str) -> bool:
        """Whether traffic between `src` and `dst` takes no time either way
        (no latency, jitter or bandwidth limit): it is delivered at once."""
        return not (self.get(src, dst).timed or self.get(dst, src).timed)

    @property
    def empty(self) -> bool:
        """No conditions were ever set."""
        return not self._links

    def delay(self, link: Link) -> float:
        """One packet's propagation delay: latency plus a seeded draw in
        [-jitter, +jitter], never below 0 (no draw without jitter)."""
        if not link.jitter:
            return link.latency
        return max(0.0, link.latency + self.random.uniform(-link.jitter, link.jitter))

    def lost(self, link: Link) -> bool:
        """Whether a datagram on `link` is lost (a seeded draw; none without loss)."""
        return bool(link.loss) and self.random.random() < link.loss

    def wire(self, src: str, dst: str, link: Link, nbytes: int, now: float) -> float:
        """Put `nbytes` on the wire of ``src -> dst`` at `now`: when the last
        byte has left (bytes of one direction leave one after another)."""
        if link.bandwidth is None:
            return now
        key = (src, dst)
        start = max(now, self._busy_until.get(key, 0.0))
        done = start + nbytes / link.bandwidth
        self._busy_until[key] = done
        return done

    def arrival(self, src: str, dst: str, nbytes: int, now: float) -> float:
        """When a packet of `nbytes` sent from `src` to `dst` at `now` arrives
        (serialisation, then latency and jitter)."""
        link = self.get(src, dst)
        return self.wire(src, dst, link, nbytes, now) + self.delay(link)

