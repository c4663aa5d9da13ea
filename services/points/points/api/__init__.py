"""FastAPI routers: parse, authorise, call a handler, shape the answer."""
