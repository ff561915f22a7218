"""The product registry: radiopharmaceutical products, their names and aliases (``data/products``).

One registry for every module that names a product: the service's written directives and batches,
the right-product check at dispensing, and the planning protocols (each protocol file names the code of
its product; the protocol gives the pre-cycle rules, see
:func:`theradose.planning.protocols.protocol_for_product`).
Names are matched case-insensitively with spaces, hyphens, underscores and brackets ignored, so
``"[177Lu]Lu-PSMA-617"``, ``"177Lu-PSMA-617"`` and ``"Pluvicto"`` are one product; an unknown name is
an :class:`~theradose.errors.InputError` listing the products, never a fallback.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from theradose.errors import DataError, InputError

SCHEMA_VERSION = 1
_IGNORED = re.compile(r"[\s\-_\[\]\(\)]+")


@dataclass(frozen=True)
class Product:
    """One radiopharmaceutical product.

    Attributes
    ----------
    code : str
        Canonical code, e.g. ``"lu177-psma-617"``.
    name : str
        Display name, e.g. ``"[177Lu]Lu-PSMA-617"``.
    brand, inn : str
        Brand name and international non-proprietary name.
    nuclide : str
        Canonical nuclide, e.g. ``"Lu-177"``.
    aliases : tuple of str
        Other names meaning this product.
    citation : str
        Source of the names.
    """

    code: str
    name: str
    brand: str
    inn: str
    nuclide: str
    aliases: tuple[str, ...]
    citation: str

    @property
    def all_names(self) -> tuple[str, ...]:
        """Code, name, brand, INN and aliases."""
        return (self.code, self.name, self.brand, self.inn, *self.aliases)

    def matches(self, name: str) -> bool:
        """Whether ``name`` (as written on a directive, a batch or a study file) is this product."""
        key = normalise(name)
        return bool(key) and any(normalise(n) == key for n in self.all_names)


def normalise(name: str) -> str:
    """The matching key of a product name (case, spaces, hyphens and brackets ignored)."""
    return _IGNORED.sub("", name).casefold()


@cache
def load_products() -> dict[str, Product]:
    """All products of the registry by code (read once)."""
    text = (resources.files("theradose.data") / "products" / "products.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    if data.get("schema_version") != SCHEMA_VERSION:
        raise DataError(f"products.toml schema_version must be {SCHEMA_VERSION}: reinstall theradose")
    out: dict[str, Product] = {}
    seen: dict[str, str] = {}
    for code, table in data["products"].items():
        product = Product(
            code=code,
            name=str(table["name"]),
            brand=str(table["brand"]),
            inn=str(table["inn"]),
            nuclide=str(table["nuclide"]),
            aliases=tuple(str(a) for a in table.get("aliases", ())),
            citation=str(table["citation"]),
        )
        for name in product.all_names:
            key = normalise(name)
            if seen.setdefault(key, code) != code:
                raise DataError(f"products.toml: name {name!r} of {code} is also a name of {seen[key]}")
        out[code] = product
    return out


def find_product(name: str) -> Product | None:
    """The product one of whose names is ``name``, or None."""
    for product in load_products().values():
        if product.matches(name):
            return product
    return None


def get_product(name: str, *, field: str = "product") -> Product:
    """The product named ``name``; an :class:`InputError` naming ``field`` and the choices otherwise."""
    product = find_product(name)
    if product is None:
        choices = ", ".join(f"{p.name} ({p.brand})" for p in load_products().values())
        raise InputError(f"{field} {name!r} is not in the product registry: use one of {choices}")
    return product
