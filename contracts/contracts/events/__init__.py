"""Events, one module per producing domain."""
