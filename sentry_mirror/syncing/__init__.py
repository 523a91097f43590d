"""Syncing: one sync of one source, stream by stream, on the walker's gear (pages, checkpoints, the write buffer), events on fetch threads."""
