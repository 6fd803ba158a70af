"""Work that runs in the RQ worker. Code outside jobs/ enqueues these by dotted path."""
