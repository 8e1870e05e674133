"""One training loop (``loop.fit``) shared by every method, and each method's task."""
