"""One router per area: the member wallet, the partner portal, the ops console."""
