"""Ordered, named, finite domains: the attribute space a graphical model lives on."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence


class Domain:
    """An ordered list of attributes, each with a finite number of integer codes.

    ``Domain(["a", "b"], [3, 2])`` is the space {0,1,2} x {0,1}.  The order of
    ``attrs`` is significant: it is the axis order of every tensor defined over
    the domain, and sub-domains made by :meth:`project` keep the order of the
    parent domain's attributes as given in the request.
    """

    __slots__ = ("attrs", "shape", "_index")

    def __init__(self, attrs: Sequence[str], shape: Sequence[int]):
        attrs = tuple(attrs)
        shape = tuple(int(n) for n in shape)
        if len(attrs) != len(shape):
            raise ValueError(
                f"Domain needs one size per attribute: got {len(attrs)} attributes "
                f"and {len(shape)} sizes"
            )
        if len(set(attrs)) != len(attrs):
            seen: set[str] = set()
            dupes = [a for a in attrs if a in seen or seen.add(a)]
            raise ValueError(f"Domain has repeated attribute(s): {sorted(set(dupes))}")
        for a, n in zip(attrs, shape):
            if not isinstance(a, str):
                raise TypeError(f"Domain attribute names must be str, got {a!r}")
            if n < 1:
                raise ValueError(f"attribute {a!r} must have at least one value, got size {n}")
        self.attrs: tuple[str, ...] = attrs
        self.shape: tuple[int, ...] = shape
        self._index = {a: i for i, a in enumerate(attrs)}

    @classmethod
    def from_dict(cls, sizes: Mapping[str, int]) -> "Domain":
        """Domain from an ordered mapping ``{name: number of codes}``."""
        return cls(list(sizes.keys()), list(sizes.values()))

    def to_dict(self) -> dict[str, int]:
        return dict(zip(self.attrs, self.shape))

    def check(self, attrs: Iterable[str], what: str = "clique") -> tuple[str, ...]:
        """Return ``attrs`` as a tuple, raising a ValueError naming any unknown attribute."""
        attrs = tuple(attrs)
        unknown = [a for a in attrs if a not in self._index]
        if unknown:
            raise ValueError(f"{what} {attrs} has attribute(s) not in the domain: {unknown}")
        if len(set(attrs)) != len(attrs):
            raise ValueError(f"{what} {attrs} repeats an attribute")
        return attrs

    def canonical(self, attrs: Iterable[str]) -> tuple[str, ...]:
        """The attributes sorted into this domain's order (the axis order we store)."""
        return tuple(sorted(self.check(attrs), key=self._index.__getitem__))

    def project(self, attrs: Iterable[str] | str) -> "Domain":
        """The sub-domain over ``attrs`` (in the order given)."""
        if isinstance(attrs, str):
            attrs = (attrs,)
        attrs = self.check(attrs, "attributes")
        return Domain(attrs, [self.shape[self._index[a]] for a in attrs])

    def marginalize(self, attrs: Iterable[str]) -> "Domain":
        """The sub-domain without ``attrs``."""
        drop = set(attrs)
        return self.project([a for a in self.attrs if a not in drop])

    def size(self, attrs: Iterable[str] | str | None = None) -> int:
        """Number of cells of the domain (or of its projection onto ``attrs``)."""
        if attrs is None:
            return math.prod(self.shape)
        return math.prod(self.project(attrs).shape)

    def axes(self, attrs: Iterable[str]) -> tuple[int, ...]:
        return tuple(self._index[a] for a in attrs)

    def merge(self, other: "Domain") -> "Domain":
        """Union of two domains: this domain's attributes, then the other's new ones."""
        extra = [(a, n) for a, n in zip(other.attrs, other.shape) if a not in self._index]
        for a, n in zip(other.attrs, other.shape):
            if a in self._index and self.shape[self._index[a]] != n:
                raise ValueError(f"attribute {a!r} has size {self.shape[self._index[a]]} and {n}")
        return Domain(self.attrs + tuple(a for a, _ in extra), self.shape + tuple(n for _, n in extra))

    def __contains__(self, attr: object) -> bool:
        return attr in self._index

    def __getitem__(self, attr: str) -> int:
        return self.shape[self._index[attr]]

    def __iter__(self) -> Iterator[str]:
        return iter(self.attrs)

    def __len__(self) -> int:
        return len(self.attrs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Domain) and self.attrs == other.attrs and self.shape == other.shape

    def __hash__(self) -> int:
        return hash((self.attrs, self.shape))

    def __repr__(self) -> str:
        inner = ", ".join(f"{a}: {n}" for a, n in zip(self.attrs, self.shape))
        return f"Domain({inner})"
