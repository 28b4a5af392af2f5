"""Publishing: destinations (``[publish.<id>]``), the outbox, review actions.

The publisher interface and its contract are in :mod:`waikan.publish.base`;
built-in types (telegram, webhook, email) register through
:mod:`waikan.plugins` like third-party ones.
"""

from __future__ import annotations

from waikan.publish.base import Context, DeliveryFailed, DeliveryUncertain, Option, Publisher

__all__ = ["Context", "DeliveryFailed", "DeliveryUncertain", "Option", "Publisher"]
