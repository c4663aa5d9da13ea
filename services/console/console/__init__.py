"""The programme in a browser: member wallet, partner portal and ops console, over the services' public APIs."""
