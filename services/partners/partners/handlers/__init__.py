"""One function per request or message: load, call the domain, save, emit."""
