"""Running the mirror: configuration, syncing every source, the scheduler, the CLI's options and output, the demo, progress on a terminal."""
