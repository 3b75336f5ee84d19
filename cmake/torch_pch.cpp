// Translation unit that owns the shared precompiled header for libtorch users.
