"""One function per message or command: load, call the domain, save, emit."""
