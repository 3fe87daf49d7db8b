"""The identity a verified bearer token stands for, and the roles orderflow knows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    # Acts for one customer, whose id is the token's subject: their own orders only.
    CUSTOMER = "customer"
    # A trusted backend (a storefront, a support tool) acting for any customer.
    SERVICE = "service"
    # Operators: stock, catalog, dead letters, outbox, tables, sagas.
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    roles: frozenset[Role]

    @classmethod
    def of(cls, subject: str, roles: Iterable[str]) -> Principal:
        """Unknown role names are ignored: a token grants only what orderflow defines."""
        known = {role.value for role in Role}
        return cls(subject, frozenset(Role(name) for name in roles if name in known))

    def has_any(self, roles: Iterable[Role]) -> bool:
        return not self.roles.isdisjoint(roles)

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles

    @property
    def for_any_customer(self) -> bool:
        """Whether it may act for every customer (admin or service), not only itself."""
        return self.has_any((Role.ADMIN, Role.SERVICE))

    def may_act_for(self, customer_id: str) -> bool:
        """Whether it may see and change what belongs to ``customer_id``."""
        if self.for_any_customer:
            return True
        return Role.CUSTOMER in self.roles and customer_id == self.subject


# With ORDERFLOW_AUTH=disabled every request is this principal.
DEVELOPER = Principal("developer", frozenset(Role))
